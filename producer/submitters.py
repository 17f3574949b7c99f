"""Who submitted over AMQP: with JOBCAST_AUTH=on a submission carries its API key in the
x-jobcast-key header, and the job belongs to that key (as over HTTP, `Authorization`).

A header anyone who may publish can set: it is checked like a bearer token (by its sha256 in the
ledger), and a submission without a valid one is refused, dead-lettered (without the key,
messaging/dead_letters.py) and answered `unauthorized`. The key is never logged.
"""

from collections.abc import Awaitable, Callable, Mapping

from contracts.headers import HEADER_KEY
from contracts.principals import KEY_PREFIX, KeyRecord, Principal, digest, owns

KeyLookup = Callable[[str], Awaitable[KeyRecord | None]]
"""The ledger's key_by_digest."""

OwnerLookup = Callable[[int], Awaitable[str | None]]
"""The ledger's job_owner."""

MAX_KEY_CHARS = 200
"""Longer than any API key jobcast makes; a longer header is refused unread."""


class SubmitterRefusedError(Exception):
    """A submission without a valid API key: why, in words (never the key)."""


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


def _header(headers: Mapping[str, object]) -> str | None:
    """The key as sent (a str, or bytes as some clients send a long string); None if absent."""
    value = headers.get(HEADER_KEY)
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return value.strip() or None if isinstance(value, str) else None
