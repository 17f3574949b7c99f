"""API keys in the ledger (contracts/principals.py): a name, the sha256 of the secret (never
the secret), admin or not, and when it was created and revoked; jobs name their key (`owner`)."""

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from contracts import UnknownOffsetError
from contracts.principals import KeyRecord, Principal, visible

if TYPE_CHECKING:
    from ledger.protocol import Ledger

SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    name TEXT PRIMARY KEY,
    digest TEXT UNIQUE NOT NULL,
    admin BOOLEAN NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
"""

POSTGRES_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobcast_api_keys (
    name TEXT PRIMARY KEY,
    digest TEXT UNIQUE NOT NULL,
    admin BOOLEAN NOT NULL DEFAULT false,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at TIMESTAMPTZ
);
ALTER TABLE jobcast_jobs ADD COLUMN IF NOT EXISTS owner TEXT;
CREATE INDEX IF NOT EXISTS jobcast_jobs_by_owner ON jobcast_jobs (owner, id);
"""

SQLITE_OWNER_INDEX = "CREATE INDEX IF NOT EXISTS jobs_by_owner ON jobs (owner, id)"

KEY_COLUMNS = "name, digest, admin, created_at, revoked_at"


class KeyExistsError(ValueError):
    """`jobcast keys add` with a name already used (revoked names stay taken)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"an API key named {name!r} exists already")
        self.name = name


def key_from_row(row: Sequence[Any]) -> KeyRecord:
    name, digest, admin, created_at, revoked_at = row
    return KeyRecord(
        name=name,
        digest=digest,
        admin=bool(admin),
        created_at=_as_datetime(created_at),
        revoked_at=None if revoked_at is None else _as_datetime(revoked_at),
    )


def _as_datetime(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


async def ensure_visible(
    ledger: "Ledger", principal: Principal, offset: int, *, write: bool = False
) -> None:
    """UnknownOffsetError (404 "Offset not found") unless `principal` may read (`write`: change)
    job `offset`: the same answer, after the same one read, for another key's job as for an
    offset never handed out, so counting offsets tells a key nothing of others' jobs."""
    if principal.admin and not principal.read_only:
        return
    owner = await ledger.job_owner(offset)  # also read for a token naming its offsets
    if not visible(principal, offset, owner) or (write and principal.read_only):
        raise UnknownOffsetError(offset)
