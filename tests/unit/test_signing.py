"""Signatures on jobs and replies, and the key every process must agree on."""

import pytest

from contracts.errors import ConfigurationError
from contracts.signing import DEVELOPMENT_KEY, Signer
from jobcast.bootstrap import signer
from jobcast.settings import Settings


def test_a_body_verifies_only_with_its_own_signature_and_key():
    body = b'{"offset": 1}'
    signature = Signer("k").sign(body)
    assert Signer("k").verify(body, signature)
    assert Signer("k").verify(body, signature.encode())  # as a bytes header
    assert not Signer("k").verify(b'{"offset": 2}', signature)
    assert not Signer("other").verify(body, signature)
    for hostile in (None, 42, "", "zz" * 32, ["a"], {"a": 1}):
        assert not Signer("k").verify(body, hostile)


def test_a_signature_header_that_is_not_ascii_is_wrong_not_an_error():
    # hmac.compare_digest raises TypeError for a str with non-ASCII characters; a header from
    # the wire may be any text, or bytes that are not UTF-8 (decoded with U+FFFD before)
    body = b'{"offset": 1}'
    for hostile in ("\u00e9" * 64, "\u00e9", b"\xff" * 64, "\udc80", "\x00" * 64):
        assert not Signer("k").verify(body, hostile)


def test_the_configured_key_signs():
    settings = Settings(signing_key="s3cret", amqp_url="amqp://u:p@rabbit.example/")
    body = b"{}"
    assert signer(settings).sign(body) == Signer("s3cret").sign(body)


@pytest.mark.parametrize(
    "url", ["amqp://guest:guest@localhost:5672/", "amqp://guest:guest@127.0.0.1/", "amqp://[::1]/"]
)
def test_without_a_key_a_loopback_broker_gets_the_development_key(url):
    assert signer(Settings(amqp_url=url)).sign(b"x") == Signer(DEVELOPMENT_KEY).sign(b"x")


def test_without_a_key_a_broker_on_another_machine_is_refused_with_the_setting_named():
    settings = Settings(amqp_url="amqp://jobcast:pw@rabbit.internal:5672/prod")
    with pytest.raises(ConfigurationError, match="JOBCAST_SIGNING_KEY") as refused:
        signer(settings)
    assert "pw" not in str(refused.value)


def test_the_key_never_shows_in_the_settings_repr():
    assert "s3cret" not in repr(Settings(signing_key="s3cret"))
