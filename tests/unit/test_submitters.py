"""An AMQP submission's x-jobcast-key, checked as a bearer token is: the key's name, or why not."""

from datetime import UTC, datetime

import pytest

from contracts.headers import HEADER_KEY
from contracts.principals import KeyRecord, Principal, digest
from producer.submitters import SubmitterRefusedError, Submitters

NOW = datetime(2026, 11, 30, tzinfo=UTC)
GOOD, REVOKED = "jck_good-secret", "jck_revoked-secret"
KEYS = {
    digest(GOOD): KeyRecord("alice", digest(GOOD), admin=False, created_at=NOW),
    digest(REVOKED): KeyRecord("bob", digest(REVOKED), False, NOW, revoked_at=NOW),
}


async def lookup(key_digest: str) -> KeyRecord | None:
    return KEYS.get(key_digest)


async def owner_of(offset: int) -> str | None:
    return {1: "alice", 2: "bob"}.get(offset)


SUBMITTERS = Submitters(lookup, owner_of)


@pytest.mark.parametrize("value", [GOOD, GOOD.encode(), f" {GOOD} "])
async def test_a_valid_key_names_the_owner(value: object) -> None:
    principal = await SUBMITTERS.principal({HEADER_KEY: value})
    assert principal == Principal(name="alice", admin=False)


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        (None, "no API key"),
        ({}, "no API key"),
        ({HEADER_KEY: ""}, "no API key"),
        ({HEADER_KEY: 42}, "no API key"),
        ({"X-Jobcast-Key": GOOD}, "no API key"),  # AMQP header names are case-sensitive
        ({HEADER_KEY: "jck_unknown"}, "unknown API key"),
        ({HEADER_KEY: "not-a-key"}, "unknown API key"),
        ({HEADER_KEY: GOOD + "x" * 300}, "unknown API key"),
        ({HEADER_KEY: REVOKED}, "'bob' is revoked"),
    ],
)
async def test_a_missing_unknown_or_revoked_key_is_refused_without_echoing_it(
    headers: dict[str, object] | None, why: str
) -> None:
    with pytest.raises(SubmitterRefusedError, match=why) as refused:
        await SUBMITTERS.principal(headers)
    assert "jck_" not in str(refused.value)


async def test_a_key_changes_only_its_own_jobs_an_admin_every_job() -> None:
    alice = Principal(name="alice", admin=False)
    assert await SUBMITTERS.may_change(alice, 1)
    assert not await SUBMITTERS.may_change(alice, 2)
    assert not await SUBMITTERS.may_change(alice, 3)  # no such job: answered as unknown
    assert await SUBMITTERS.may_change(Principal(name="root", admin=True), 2)
