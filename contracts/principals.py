"""Who is asking: the principal an API key (or a read token) names, and what it may see.

Pure: the HTTP side (jobcast/http/auth.py) resolves a bearer token into a Principal and hands
it to the routers; the ledger keeps only a key's name (a job's `owner`) and its digest.
"""

import hashlib
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

KEY_PREFIX = "jck_"
"""API keys are `jck_` followed by 32 random bytes in URL-safe base64 (no padding)."""


@dataclass(frozen=True)
class Principal:
    """An API key's name (None with JOBCAST_AUTH=off), whether it is an admin key (sees every
    job), and for a scoped read token the offsets or the batch it may read, read only."""

    name: str | None
    admin: bool
    offsets: frozenset[int] | None = None
    batch: str | None = None
    read_only: bool = False
    expires: int | None = None
    """A read token's expiry (seconds since the epoch); None for an API key."""


ANYONE = Principal(name=None, admin=True)
"""The principal of every request with JOBCAST_AUTH=off: the seed's contract, every job."""


@dataclass(frozen=True)
class KeyRecord:
    """An API key as the ledger keeps it: never the secret, only its sha256 digest."""

    name: str
    digest: str
    admin: bool
    created_at: datetime
    revoked_at: datetime | None = None


def new_secret() -> str:
    """A fresh API key secret, shown once to the operator."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    """What the ledger keeps of a secret: its sha256, in hex."""
    return hashlib.sha256(secret.encode()).hexdigest()


def owns(principal: Principal, owner: str | None) -> bool:
    """True when `principal` may read or change a job whose owner is `owner` (None: a job
    scheduled with auth off, or an offset with no job): an admin, or the key that scheduled it."""
    return principal.admin or (principal.name is not None and principal.name == owner)


def visible(principal: Principal, offset: int, owner: str | None) -> bool:
    """True when `principal` may see job `offset`, owned by `owner`: a scoped read token
    (`offsets` given) sees only the offsets it names; an API key, the jobs it owns (or all,
    an admin key)."""
    if principal.offsets is not None:
        return offset in principal.offsets
    return owns(principal, owner)


WhoAsks = Callable[..., Awaitable[Principal]]
"""A FastAPI dependency answering the Principal of the request (jobcast/http/auth.py); routers
take one from the composition root, so producer and query never import the HTTP edge."""


StillAllowed = Callable[[Principal], Awaitable[bool]]
"""Whether a Principal resolved when a stream began may still read: its key is not revoked,
its read token has not expired (jobcast/http/auth.py); an open stream asks it now and then."""


async def always(_: Principal) -> bool:
    """The StillAllowed with JOBCAST_AUTH=off (and a router's default)."""
    return True


async def anyone() -> Principal:
    """The dependency with JOBCAST_AUTH=off (and a router's default): every request is ANYONE."""
    return ANYONE
