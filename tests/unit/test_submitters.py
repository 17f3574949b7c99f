"""An AMQP submission's x-jobcast-key, checked as a bearer token is: the key's name, or why not."""

from datetime import UTC, datetime

import pytest

from contracts.batches import MAX_BATCH_BYTES, BatchRequest
from contracts.control import CONTROL_MESSAGE_BYTES, CancelRejected, CancelRequest
from contracts.errors import DeadLetterReason, LedgerUnavailableError
from contracts.headers import HEADER_KEY
from contracts.messages import MAX_REQUEST_BYTES, JobRequest, ScheduleRejected
from contracts.principals import KeyRecord, Principal, digest
from producer.submitters import (
    SubmissionRefusedError,
    SubmitterRefusedError,
    Submitters,
    owner_of,
    parsed,
    refuse,
    submitter,
)

NOW = datetime(2026, 11, 30, tzinfo=UTC)
GOOD, REVOKED = "jck_good-secret", "jck_revoked-secret"
KEYS = {
    digest(GOOD): KeyRecord("alice", digest(GOOD), admin=False, created_at=NOW),
    digest(REVOKED): KeyRecord("bob", digest(REVOKED), False, NOW, revoked_at=NOW),
}


async def lookup(key_digest: str) -> KeyRecord | None:
    return KEYS.get(key_digest)


async def owner_of_job(offset: int) -> str | None:
    return {1: "alice", 2: "bob"}.get(offset)


SUBMITTERS = Submitters(lookup, owner_of_job)


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


async def test_with_auth_off_a_submission_has_no_owner_and_needs_no_key() -> None:
    assert await submitter(None, {}) is None
    assert await owner_of(None, None) is None


async def test_with_auth_on_the_owner_is_the_keys_name_and_no_key_is_refused_unauthorized() -> None:
    assert await owner_of(SUBMITTERS, {HEADER_KEY: GOOD}) == "alice"
    assert await submitter(SUBMITTERS, {HEADER_KEY: GOOD}) == Principal(name="alice", admin=False)
    for headers in (None, {HEADER_KEY: REVOKED}):
        with pytest.raises(SubmissionRefusedError) as refused:
            await owner_of(SUBMITTERS, headers)
        assert (refused.value.reason, refused.value.error) == (
            DeadLetterReason.UNAUTHORIZED,
            "unauthorized",
        )


async def test_a_key_is_checked_again_once_the_ledger_answers() -> None:
    calls = 0

    async def flaky(key_digest: str) -> KeyRecord | None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise LedgerUnavailableError("down")
        return KEYS.get(key_digest)

    assert await owner_of(Submitters(flaky, owner_of_job), {HEADER_KEY: GOOD}) == "alice"
    assert calls == 2


class Intake:
    """What `refuse` uses of an intake: it dead-letters, then answers."""

    def __init__(self) -> None:
        self.done: list[object] = []

    async def move_to_dead(self, message: object, reason: DeadLetterReason, detail: str) -> None:
        self.done.append(("dead", reason, detail))

    async def answer(self, message: object, body: object) -> None:
        self.done.append(("answer", body))


@pytest.mark.parametrize("rejected", [ScheduleRejected, CancelRejected])
async def test_a_refused_submission_is_dead_lettered_then_answered_why(rejected) -> None:
    intake = Intake()
    why = SubmissionRefusedError(DeadLetterReason.TOO_LARGE, "too large: 9 bytes")
    await refuse(intake, object(), why, rejected)  # type: ignore[arg-type]
    assert intake.done == [
        ("dead", DeadLetterReason.TOO_LARGE, "too large: 9 bytes"),
        ("answer", rejected(error="invalid_request", detail="too large: 9 bytes")),
    ]


# NOTE: the words each intake has always sent (README, jobcast.dead readers); a cancel's never
# named its limit.
@pytest.mark.parametrize(
    ("model", "limit", "what", "say_limit", "too_large"),
    [
        (JobRequest, MAX_REQUEST_BYTES, "job request", True, ", over 65536"),
        (BatchRequest, MAX_BATCH_BYTES, "batch", True, f", over {8 * 1024 * 1024}"),
        (CancelRequest, CONTROL_MESSAGE_BYTES, "cancel request", False, ""),
    ],
)
def test_an_intake_refuses_an_oversized_or_malformed_body_in_its_own_words(
    model, limit, what, say_limit, too_large
) -> None:
    with pytest.raises(SubmissionRefusedError) as big:
        parsed(b" " * (limit + 1), model, limit, what, say_limit=say_limit)
    assert (big.value.reason, big.value.error) == (DeadLetterReason.TOO_LARGE, "invalid_request")
    assert big.value.detail == f"too large: a {what} of {limit + 1} bytes{too_large}"
    with pytest.raises(SubmissionRefusedError) as bad:
        parsed(b"[]", model, limit, what, say_limit=say_limit)
    assert bad.value.reason == DeadLetterReason.INVALID_REQUEST
    assert bad.value.detail.startswith(f"invalid {what}: body: ")
    ok = parsed(b'{"offset": 7}', CancelRequest, CONTROL_MESSAGE_BYTES, "cancel request")
    assert ok == CancelRequest(offset=7)
