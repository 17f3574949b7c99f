"""JOBCAST_AUTH: a request's bearer token resolved into the Principal the routers act for.

With auth off every request is contracts.principals.ANYONE (the seed's contract). With auth on
every route this guards needs an API key in `Authorization: Bearer jck_...`: 401 (with
`WWW-Authenticate: Bearer`) without one or for one the ledger does not know, 403 for a revoked
one. The ledger is asked by the secret's sha256 (one indexed read); the secret itself is never
kept, logged or echoed.
"""

import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request

from contracts import UnavailableError
from contracts.principals import ANYONE, KEY_PREFIX, KeyRecord, Principal, digest
from ledger import Ledger

CHALLENGE = {"WWW-Authenticate": "Bearer"}

AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {
        "description": "JOBCAST_AUTH=on and no API key (Authorization: Bearer jck_...), or one "
        "the ledger does not know; answered with WWW-Authenticate: Bearer."
    },
    403: {"description": "JOBCAST_AUTH=on and the API key is revoked."},
}

KEYS_FRESH_SECONDS = 5.0
"""How long the keys read for open streams' checks are used before they are read again: one
read serves every stream of the gateway."""

OtherToken = Callable[[str, Request], Awaitable[Principal | None]]
"""How a bearer token that is not an API key (no `jck_` prefix) is resolved, e.g. a scoped
read token; None: refused as unknown."""


async def _no_other_token(_token: str, _request: Request) -> Principal | None:
    return None


def bearer(request: Request) -> str | None:
    """The token of `Authorization: Bearer <token>`, if the request sent one."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


class Authenticator:
    """The FastAPI dependency resolving a request into its Principal (cached per request)."""

    def __init__(self, ledger: Ledger, *, enabled: bool) -> None:
        self.ledger = ledger
        self.enabled = enabled
        self.other_token: OtherToken = _no_other_token
        self.token_of: Callable[[Request], str | None] = bearer
        """Where a request's token is read from; the read tokens add `?token=` on streams."""
        self._keys: tuple[float, list[KeyRecord]] | None = None

    async def __call__(self, request: Request) -> Principal:
        if not self.enabled:
            return ANYONE
        token = self.token_of(request)
        if token is None:
            raise HTTPException(401, "An API key is required", headers=CHALLENGE)
        if not token.startswith(KEY_PREFIX):
            other = await self.other_token(token, request)
            if other is None:
                raise HTTPException(401, "Unknown API key", headers=CHALLENGE)
            return other
        key = await self.ledger.key_by_digest(digest(token))
        if key is None:
            raise HTTPException(401, "Unknown API key", headers=CHALLENGE)
        if key.revoked_at is not None:
            raise HTTPException(403, "API key revoked")
        return Principal(name=key.name, admin=key.admin)

    async def still_allowed(self, principal: Principal) -> bool:
        """The StillAllowed of open streams (resolved once, when they began): False once the
        key is revoked or the read token has expired; True while the ledger cannot say."""
        if not self.enabled or principal.name is None:
            return True
        if principal.expires is not None and principal.expires <= time.time():
            return False
        now = time.monotonic()
        if self._keys is None or now - self._keys[0] > KEYS_FRESH_SECONDS:
            try:
                self._keys = (now, await self.ledger.keys())
            except UnavailableError:
                return True  # NOTE: an outage ends no stream; the next check asks again
        return any(k.name == principal.name and k.revoked_at is None for k in self._keys[1])

    def admin(self) -> Callable[..., Awaitable[Principal]]:
        """A dependency that also refuses (403) a key that is not an admin key."""

        async def admin_only(principal: Annotated[Principal, Depends(self)]) -> Principal:
            if not principal.admin:
                raise HTTPException(403, "This needs an admin API key")
            return principal

        return admin_only
