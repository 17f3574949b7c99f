"""Idempotency keys are one per owner: the same key sent by two API keys names two jobs.

A key is stored as `<owner>\\x1f<key>` in the jobs' one unique column (as sent with
JOBCAST_AUTH=off, no owner). So a key that another owner used is simply new to this one: no
conflict answers it, no offset of another owner's job is named, and nobody learns that the key
was used. The separator is a control character, which neither a key (printable,
contracts/text.py) nor an API key's name can hold, so no two (owner, key) pairs store alike.

A unique index over two columns would say the same, but SQLite cannot drop the column's own
UNIQUE without rebuilding the jobs table; a ledger written before keys were scoped is migrated
in place instead (`MIGRATE_*`: its owned keys get their owner's prefix, every row kept).
"""

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from contracts import IdempotencyConflictError, JobRequest

SEPARATOR = "\x1f"

T = TypeVar("T")


def scoped(owner: str | None, key: str | None) -> str | None:
    """The stored form of `key` sent by `owner` (None: no key)."""
    if key is None or owner is None:
        return key
    if SEPARATOR in owner:
        raise ValueError("an owner's name cannot hold a control character")
    return f"{owner}{SEPARATOR}{key}"


def scoped_items(
    items: Sequence[tuple[JobRequest, str | None]], owner: str | None
) -> list[tuple[JobRequest, str | None]]:
    """A batch's items with their keys in stored form."""
    return [(request, scoped(owner, key)) for request, key in items]


def as_sent(stored: str) -> str:
    """The key as its sender wrote it."""
    return stored.rpartition(SEPARATOR)[2]


async def unscoping(call: Callable[[], Awaitable[T]]) -> T:
    """`call()`, with an IdempotencyConflictError naming the key as sent, not as stored."""
    try:
        return await call()
    except IdempotencyConflictError as exc:
        raise IdempotencyConflictError(as_sent(exc.key), exc.offset) from None


# NOTE: owned keys stored before they were scoped get their owner's prefix. Run once, under the
# ledger's own guard (SQLite: user_version; PostgreSQL: jobcast_migrations); a key holding the
# separator already is not prefixed twice.
MIGRATE_SQLITE = (
    "UPDATE jobs SET idempotency_key = owner || char(31) || idempotency_key"
    " WHERE owner IS NOT NULL AND idempotency_key IS NOT NULL"
    " AND instr(idempotency_key, char(31)) = 0"
)
MIGRATE_POSTGRES = (
    "UPDATE jobcast_jobs SET idempotency_key = owner || chr(31) || idempotency_key"
    " WHERE owner IS NOT NULL AND idempotency_key IS NOT NULL"
    " AND strpos(idempotency_key, chr(31)) = 0"
)
