"""JOBCAST_AMQP_URL naming the nodes of a cluster (issue 14): one URL with several hosts,
`amqp://user:password@host1:5672,host2:5673,host3/vhost`; anything else a clear error at start,
never with the password."""

import pytest

from client.amqp import AmqpTransport
from contracts.errors import ConfigurationError
from contracts.urls import MAX_NODES, masked_url, node_urls
from jobcast.bootstrap import check_broker_user, signer
from jobcast.settings import Settings
from messaging.faststream import ClusterBroker


def test_each_node_gets_the_credentials_vhost_and_query():
    url = "amqps://jobcast:s3cret@rabbit-1:5671,rabbit-2:5672,rabbit-3/prod%2Fa?cafile=/ca.pem"
    assert node_urls(url) == (
        "amqps://jobcast:s3cret@rabbit-1:5671/prod%2Fa?cafile=/ca.pem",
        "amqps://jobcast:s3cret@rabbit-2:5672/prod%2Fa?cafile=/ca.pem",
        "amqps://jobcast:s3cret@rabbit-3/prod%2Fa?cafile=/ca.pem",
    )


@pytest.mark.parametrize(
    "url",
    [
        "amqp://guest:guest@localhost:5672/",
        "amqp://localhost/",
        "amqp:///",
        "amqps://u:p@[::1]:5671/v?cafile=/a,b.pem",  # a comma in the query is no node
    ],
)
def test_one_host_is_the_url_as_it_was(url):
    assert node_urls(url) == (url,)


def test_ipv6_nodes():
    assert node_urls("amqp://[::1]:5672,[::1]:5673/") == (
        "amqp://[::1]:5672/",
        "amqp://[::1]:5673/",
    )


def test_the_password_is_masked_once_for_every_node():
    assert masked_url("amqp://u:s3cret@h1:1,h2:2/v") == "amqp://u:***@h1:1,h2:2/v"


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("amqp://u:s3cret@h1,,h2/v", "empty host"),
        ("amqp://u:s3cret@h1,h2,/v", "empty host"),
        ("amqp://u:s3cret@h1:99999,h2/v", "'h1:99999' has no valid port"),
        ("amqp://u:s3cret@h1:x,h2/v", "'h1:x' has no valid port"),
        ("amqp://u:s3cret@h1:0/v", "'h1:0' has no valid port"),
        ("amqp://u:s3cret@:5672,h2/v", "':5672' has no host"),
        ("amqp://u:s3cret@h1:5672,h1:5672/v", "names node 'h1:5672' twice"),
        ("http://u:s3cret@h1,h2/v", "must start with amqp:// or amqps://"),
        ("amqp://u:s3cret@h1/v,amqp://u:other@h2/v", "is a list of URLs"),
        ("amqp://u:s3cret@h1/v, amqp://u:other@h2/v", "is a list of URLs"),
        ("amqp://u:s3cret@" + ",".join(f"h{i}" for i in range(MAX_NODES + 1)) + "/", "at most"),
    ],
)
def test_a_wrong_node_list_is_refused_at_start_saying_what_without_a_password(url, says):
    with pytest.raises(ValueError, match=says) as refused:
        node_urls(url)
    assert "s3cret" not in str(refused.value)
    assert "other" not in str(refused.value)
    with pytest.raises(ConfigurationError, match=f"JOBCAST_AMQP_URL: .*{says}") as at_start:
        Settings(amqp_url=url)
    assert "s3cret" not in str(at_start.value)
    with pytest.raises(ValueError, match=says):
        AmqpTransport(url)  # the client library takes the same list, and refuses the same


def test_the_broker_and_the_client_hold_every_node_in_order():
    url = "amqp://u:p@h1:1,h2:2,h3:3/v"
    assert ClusterBroker(url).nodes == node_urls(url)


def test_guest_is_refused_when_any_node_is_on_another_machine():
    with pytest.raises(ConfigurationError, match="JOBCAST_ALLOW_GUEST"):
        check_broker_user(Settings(amqp_url="amqp://guest:guest@127.0.0.1:5672,rabbit-2/"))
    check_broker_user(Settings(amqp_url="amqp://guest:guest@127.0.0.1:5672,localhost:5673/"))


def test_the_development_key_is_refused_when_any_node_is_on_another_machine():
    with pytest.raises(ConfigurationError, match="JOBCAST_SIGNING_KEY"):
        signer(Settings(amqp_url="amqp://u:pw@127.0.0.1:5672,rabbit-2:5672/"))
    assert signer(Settings(amqp_url="amqp://u:pw@127.0.0.1:5672,[::1]:5673/"))
