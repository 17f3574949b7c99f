"""Broker credentials: guest refused off this machine, passwords masked wherever a URL is
printed, and deploy/rabbitmq/definitions.json in step with compose.yaml's dev passwords."""

import base64
import re
import runpy

import pytest
import yaml

from contracts.errors import ConfigurationError
from contracts.urls import masked_url, scrubbed
from harness.services import COMPOSE_AMQP_URL
from jobcast.bootstrap import check_broker_user, create_broker
from jobcast.settings import Settings
from ledger import open_ledger
from messaging.connection import unreachable
from tests.support.broker_users import DEFINITIONS, ROLES, definitions, dev_passwords

REMOTE = ["rabbitmq.example.com", "10.0.0.7", "[2001:db8::1]", "rabbitmq"]
LOCAL = ["localhost", "127.0.0.1", "127.0.0.2", "[::1]"]


@pytest.mark.parametrize("host", REMOTE)
@pytest.mark.parametrize("userinfo", ["guest:guest@", "guest:other@", "gu%65st:x@", ""])
def test_guest_against_a_broker_on_another_machine_is_refused_before_connecting(host, userinfo):
    settings = Settings(amqp_url=f"amqp://{userinfo}{host}:5672/")
    with pytest.raises(ConfigurationError, match="JOBCAST_ALLOW_GUEST") as refused:
        check_broker_user(settings)
    # the processes build their broker (and so check) before they connect
    with pytest.raises(ConfigurationError):
        create_broker(settings)
    assert "other" not in str(refused.value)


@pytest.mark.parametrize("host", LOCAL)
def test_guest_on_this_machine_is_allowed(host):
    check_broker_user(Settings(amqp_url=f"amqp://guest:guest@{host}:5672/"))


@pytest.mark.parametrize("host", REMOTE)
def test_guest_off_this_machine_is_allowed_when_asked_and_other_users_always(host):
    check_broker_user(Settings(amqp_url=f"amqp://guest:guest@{host}/", allow_guest=True))
    check_broker_user(Settings(amqp_url=f"amqps://jobcast-worker:pw@{host}:5671/"))


def test_allow_guest_is_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("JOBCAST_AMQP_URL", "amqp://guest:guest@rabbitmq.example.com/")
    with pytest.raises(ConfigurationError):
        check_broker_user(Settings())
    monkeypatch.setenv("JOBCAST_ALLOW_GUEST", "true")
    check_broker_user(Settings())


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("amqp://u:s3cret@h:5672/v", "amqp://u:***@h:5672/v"),
        ("amqps://u:p%40ss@h/v?cafile=/ca.pem", "amqps://u:***@h/v?cafile=/ca.pem"),
        (
            "postgresql://u:s3cret@db/jobcast?sslmode=require",
            "postgresql://u:***@db/jobcast?sslmode=require",
        ),
        ("amqp://u:pa@ss@h/", "amqp://u:***@h/"),
        ("amqp://h/", "amqp://h/"),
        ("amqp://u@h/", "amqp://u@h/"),
        ("sqlite:///jobcast.db", "sqlite:///jobcast.db"),
    ],
)
def test_a_url_is_shown_with_its_password_masked(url, shown):
    assert masked_url(url) == shown


def test_errors_that_name_a_url_never_carry_its_password():
    url = "amqp://jobcast-worker:s3cret-pw@10.0.0.7:5672/"
    error = unreachable(url, OSError(f"connect to {url} failed; password s3cret-pw"))
    assert "s3cret-pw" not in str(error)
    assert "amqp://jobcast-worker:***@10.0.0.7:5672/" in str(error)
    assert "s3cret-pw" not in scrubbed(f"at {url}", url)
    with pytest.raises(ValueError, match=r"\*\*\*") as refused:
        open_ledger("mysql://u:s3cret-pw@db/x")
    assert "s3cret-pw" not in str(refused.value)


# -- deploy/rabbitmq/definitions.json ----------------------------------------------------------


def _hash(password: str, salt: bytes) -> str:
    hashing = runpy.run_path(str(DEFINITIONS.parent / "hash_password.py"))
    return str(hashing["hash_password"](password, salt))


def test_the_definitions_hash_compose_s_dev_passwords_and_hold_no_guest():
    users = {u["name"]: u for u in definitions()["users"]}
    assert "guest" not in users
    assert set(ROLES) <= set(users)
    for name, password in dev_passwords().items():
        stored = users[name]
        assert stored["hashing_algorithm"] == "rabbit_password_hashing_sha256"
        salt = base64.b64decode(stored["password_hash"])[:4]
        assert _hash(password, salt) == stored["password_hash"], name
    assert set(dev_passwords()) == {"jobcast-gateway", "jobcast-worker"}


def test_only_the_gateway_may_configure_the_topology():
    permissions = {p["user"]: p for p in definitions()["permissions"]}
    for queue in ("jobcast.jobs", "jobcast.schedule", "jobcast.dead", "jobcast.replies"):
        assert re.fullmatch(permissions["jobcast-gateway"]["configure"], queue)
        for role in ("jobcast-worker", "jobcast-subscriber"):
            assert not re.search(permissions[role]["configure"], queue), (role, queue)
    worker = permissions["jobcast-worker"]
    assert not re.search(worker["read"], "jobcast.schedule")
    assert re.search(worker["read"], "jobcast.jobs")
    subscriber = permissions["jobcast-subscriber"]
    assert not re.search(subscriber["read"], "jobcast.jobs")
    assert not re.search(subscriber["write"], "amq.default")


def test_make_run_logs_in_to_compose_s_broker_as_its_gateway():
    assert COMPOSE_AMQP_URL.startswith(
        f"amqp://jobcast-gateway:{dev_passwords()['jobcast-gateway']}@"
    )


def test_compose_s_broker_loads_the_definitions_and_has_no_default_user():
    root = DEFINITIONS.parents[2]
    rabbitmq = yaml.safe_load((root / "compose.yaml").read_text())["services"]["rabbitmq"]
    mounts = {volume.split(":")[1] for volume in rabbitmq["volumes"] if volume.startswith("./")}
    assert {"/etc/rabbitmq/rabbitmq.conf", "/etc/rabbitmq/definitions.json"} <= mounts
    conf = (DEFINITIONS.parent / "rabbitmq.conf").read_text()
    assert "load_definitions = /etc/rabbitmq/definitions.json" in conf
    assert "RABBITMQ_DEFAULT_USER" not in (rabbitmq.get("environment") or {})
