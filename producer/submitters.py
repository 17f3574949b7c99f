"""Who submitted over AMQP: with JOBCAST_AUTH=on a submission carries its API key in the
x-jobcast-key header, and the job belongs to that key (as over HTTP, `Authorization`).

A header anyone who may publish can set: it is checked like a bearer token (by its sha256 in the
ledger), and a submission without a valid one is refused, dead-lettered (without the key,
messaging/dead_letters.py) and answered `unauthorized`. The key is never logged.

Every AMQP intake (schedule, batch, cancel) reads a message the one way, `parsed`, asks
`submitter` who sent it, and refuses what it can never handle the one way, `refuse`: to
jobcast.dead with the reason, and the sender hears why.
"""

from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from contracts.control import CancelRejected
from contracts.errors import DeadLetterReason, describe
from contracts.headers import HEADER_KEY
from contracts.messages import ScheduleRejected
from contracts.principals import KEY_PREFIX, KeyRecord, Principal, digest, owns
from ledger.outages import while_ledger_down
from messaging.consumer import Consumer, Message

KeyLookup = Callable[[str], Awaitable[KeyRecord | None]]
"""The ledger's key_by_digest."""

OwnerLookup = Callable[[int], Awaitable[str | None]]
"""The ledger's job_owner."""

MAX_KEY_CHARS = 200
"""Longer than any API key jobcast makes; a longer header is refused unread."""

M = TypeVar("M", bound=BaseModel)


class SubmissionRefusedError(Exception):
    """A submission that can never be handled: it goes to jobcast.dead with `reason`, and its
    sender is answered `error` and why (the message)."""

    def __init__(
        self, reason: DeadLetterReason, detail: str, error: str = "invalid_request"
    ) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.error = error


class SubmitterRefusedError(SubmissionRefusedError):
    """A submission without a valid API key: why, in words (never the key)."""

    def __init__(self, detail: str) -> None:
        super().__init__(DeadLetterReason.UNAUTHORIZED, detail, "unauthorized")


class Submitters:
    """Resolves a submission's x-jobcast-key into the Principal of its (valid) API key."""

    def __init__(self, key_by_digest: KeyLookup, job_owner: OwnerLookup) -> None:
        self._key_by_digest = key_by_digest
        self._job_owner = job_owner

    async def principal(self, headers: Mapping[str, object] | None) -> Principal:
        """The API key in `headers`; SubmitterRefusedError if it is missing, unknown or
        revoked (LedgerUnavailableError while the ledger is down)."""
        secret = _header(headers or {})
        if secret is None:
            raise SubmitterRefusedError(f"no API key: send it in the {HEADER_KEY} header")
        if len(secret) > MAX_KEY_CHARS or not secret.startswith(KEY_PREFIX):
            raise SubmitterRefusedError("unknown API key")
        key = await self._key_by_digest(digest(secret))
        if key is None:
            raise SubmitterRefusedError("unknown API key")
        if key.revoked_at is not None:
            raise SubmitterRefusedError(f"API key {key.name!r} is revoked")
        return Principal(name=key.name, admin=key.admin)

    async def may_change(self, principal: Principal, offset: int) -> bool:
        """True if `principal` owns the job at `offset` (or is an admin); False also for an
        offset with no job, which the caller answers as unknown either way."""
        return principal.admin or owns(principal, await self._job_owner(offset))


async def submitter(
    submitters: Submitters | None, headers: Mapping[str, object] | None
) -> Principal | None:
    """Who sent a submission: None with JOBCAST_AUTH=off (no `submitters`), else its key's
    Principal, waiting while the ledger is down; SubmitterRefusedError without a valid key."""
    if submitters is None:
        return None
    return await while_ledger_down(submitters.principal, headers)


async def owner_of(
    submitters: Submitters | None, headers: Mapping[str, object] | None
) -> str | None:
    """The owner of what a submission schedules: its key's name (None with auth off);
    SubmitterRefusedError without a valid key."""
    found = await submitter(submitters, headers)
    return found.name if found is not None else None


def parsed(body: bytes, model: type[M], limit: int, what: str, *, say_limit: bool = True) -> M:
    """`body` as a `model` (`what` the sender meant to send, for the refusal); a
    SubmissionRefusedError if it is over `limit` bytes (refused unread) or not that model."""
    if len(body) > limit:
        # NOTE: a cancel's refusal never named its limit; say_limit=False keeps it so.
        over = f", over {limit}" if say_limit else ""
        why = f"too large: a {what} of {len(body)} bytes{over}"
        raise SubmissionRefusedError(DeadLetterReason.TOO_LARGE, why)
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        why = f"invalid {what}: {describe(exc)}"
        raise SubmissionRefusedError(DeadLetterReason.INVALID_REQUEST, why) from None


async def refuse(
    intake: Consumer,
    message: Message,
    refused: SubmissionRefusedError,
    rejected: type[ScheduleRejected] | type[CancelRejected],
) -> None:
    """A submission that can never be handled: to jobcast.dead with the reason, and (with
    reply_to) its sender hears why, as `rejected`."""
    await intake.move_to_dead(message, refused.reason, refused.detail)
    await intake.answer(message, rejected(error=refused.error, detail=refused.detail))


def _header(headers: Mapping[str, object]) -> str | None:
    """The key as sent (a str, or bytes as some clients send a long string); None if absent."""
    value = headers.get(HEADER_KEY)
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return value.strip() or None if isinstance(value, str) else None
