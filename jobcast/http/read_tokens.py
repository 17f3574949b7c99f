"""Scoped read tokens over HTTP (contracts/read_tokens.py): minted for a key's own jobs (by POST
/schedule, /schedule/batch and POST /tokens), accepted as a bearer token or as `?token=` (a
browser's EventSource sends no headers) by the three routes that read one job, nowhere else.

The gate sits in the one place every request's principal comes from (jobcast/http/auth.py's
`other_token`), so a route added later cannot forget it: a token on any other route or method
is 403, on an offset it does not name 404 exactly as an offset never handed out.
"""

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts import UnknownOffsetError
from contracts.batches import MAX_BATCH_JOBS, BatchId, batch_tag
from contracts.messages import MAX_OFFSET
from contracts.principals import Principal, WhoAsks
from contracts.read_tokens import PREFIX, ReadScope, ReadTokens, derive_token_key
from contracts.signing import DEVELOPMENT_KEY
from jobcast.http.auth import CHALLENGE, bearer
from ledger import Ledger

READABLE = frozenset({"/messages/{offset}", "/messages/{offset}/stream", "/jobs/{offset}"})
"""The routes (path templates) a read token may call, with GET only."""

MAX_TTL = timedelta(days=1)
"""The longest a token POST /tokens mints may live."""


class TokenRequest(BaseModel):
    """POST /tokens: the offsets (your own jobs) or the batch a read token may read."""

    model_config = ConfigDict(extra="forbid")

    offsets: list[Annotated[int, Field(ge=0, le=MAX_OFFSET)]] | None = Field(
        None, min_length=1, max_length=MAX_BATCH_JOBS, examples=[[7]]
    )
    batch: BatchId | None = Field(None, description="Every job of yours tagged `batch:<batch>`.")
    ttl_seconds: int | None = Field(
        None,
        ge=1,
        le=int(MAX_TTL.total_seconds()),
        description="How long the token reads; JOBCAST_READ_TOKEN_TTL if unset.",
    )

    @model_validator(mode="after")
    def _one_scope(self) -> "TokenRequest":
        if (self.offsets is None) == (self.batch is None):
            raise ValueError("name offsets or a batch (one of them)")
        return self


class TokenIssued(BaseModel):
    """A read token and when it stops reading."""

    read_token: str = Field(
        examples=["jcr_eyJvIjoiYWxpY2UiLCJlIjoxNzY0NTAwMDAwLCJyIjpbWzcsN11dfQ.x"]
    )
    expires_at: datetime


class ReadGate:
    """Mints read tokens and turns one presented on a request into a read-only Principal."""

    def __init__(
        self,
        tokens: ReadTokens,
        ledger: Ledger,
        ttl: timedelta,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._tokens = tokens
        self._ledger = ledger
        self._ttl = ttl
        self._clock = clock

    def mint(
        self,
        owner: str,
        *,
        offsets: list[int] | None = None,
        batch: str | None = None,
        ttl: timedelta | None = None,
    ) -> TokenIssued:
        """A token reading `owner`'s `offsets` or `batch` for `ttl` (the default one)."""
        expires = int(self._clock() + (ttl or self._ttl).total_seconds())
        token = self._tokens.mint(owner, expires=expires, offsets=offsets, batch=batch)
        return TokenIssued(read_token=token, expires_at=datetime.fromtimestamp(expires, UTC))

    def mint_token(
        self, owner: str, *, offsets: list[int] | None = None, batch: str | None = None
    ) -> str:
        """`mint`'s token alone, with the default TTL (what POST /schedule answers)."""
        return self.mint(owner, offsets=offsets, batch=batch).read_token

    async def principal(self, token: str, request: Request) -> Principal | None:
        """The Authenticator's `other_token`: the token's read-only Principal for a request it
        may make; 401 for no valid token, 403 for a route it may not call or a revoked owner,
        404 (UnknownOffsetError) for an offset it does not name."""
        scope = self._tokens.verify(token, now=self._clock())
        if scope is None:
            raise HTTPException(401, "Invalid or expired read token", headers=CHALLENGE)
        route = request.scope.get("route")
        if request.method != "GET" or getattr(route, "path", None) not in READABLE:
            raise HTTPException(403, "A read token only reads the jobs it names")
        raw = request.path_params.get("offset", "")
        # NOTE: an offset the route will refuse (422) is left to it; only numbers are looked up.
        if isinstance(raw, str) and raw.isascii() and raw.isdigit() and int(raw) <= MAX_OFFSET:
            await self._ensure_named(scope, int(raw))
        keys = await self._ledger.keys()
        if not any(key.name == scope.owner and key.revoked_at is None for key in keys):
            raise HTTPException(403, "API key revoked")
        offsets = scope.offsets() if scope.batch is None else None
        return Principal(
            name=scope.owner,
            admin=False,
            offsets=offsets,
            batch=scope.batch,
            read_only=True,
            expires=scope.expires,
        )

    async def _ensure_named(self, scope: ReadScope, offset: int) -> None:
        """UnknownOffsetError unless the token names `offset` and it is its owner's job."""
        if scope.batch is None and offset not in scope.offsets():
            raise UnknownOffsetError(offset)
        # NOTE: the owner is checked here too, not only by the route (which takes a token's
        # offsets at their word): an Idempotency-Key is one for the whole ledger, so a key
        # repeating another's key and request is answered that job's offset, and its token.
        if await self._ledger.job_owner(offset) != scope.owner:
            raise UnknownOffsetError(offset)
        if scope.batch is not None:
            record = await self._ledger.job(offset)
            if batch_tag(scope.batch) not in record.request.tags:
                raise UnknownOffsetError(offset)


def token_of(request: Request) -> str | None:
    """The request's token: its bearer token, or a read token in `?token=` (never an API key:
    a URL lands in histories and logs)."""
    token = bearer(request)
    if token is not None:
        return token
    query = request.query_params.get("token")
    return query if query is not None and query.startswith(PREFIX) else None


def router(gate: ReadGate, ledger: Ledger, who: WhoAsks) -> APIRouter:
    """POST /tokens: a read token for jobs the caller's key owns."""
    routes = APIRouter(tags=["auth"])

    @routes.post(
        "/tokens",
        response_model=TokenIssued,
        responses={
            404: {
                "description": "An offset that is not one of your jobs (as if never handed out).",
                "content": {"application/json": {"example": {"detail": "Offset not found"}}},
            },
            422: {"description": "Neither offsets nor a batch, both, or a ttl out of bounds."},
        },
    )
    async def mint_token(
        wanted: TokenRequest, principal: Annotated[Principal, Depends(who)]
    ) -> TokenIssued:
        """Mint a read token for your own jobs, to hand to a browser: it reads those jobs
        (GET /messages, /jobs/{offset} and the stream, also as `?token=`) and nothing else."""
        assert principal.name is not None  # NOTE: mounted only with JOBCAST_AUTH=on
        for offset in sorted(set(wanted.offsets or [])):
            if await ledger.job_owner(offset) != principal.name:
                raise UnknownOffsetError(offset)
        ttl = timedelta(seconds=wanted.ttl_seconds) if wanted.ttl_seconds else None
        return gate.mint(principal.name, offsets=wanted.offsets, batch=wanted.batch, ttl=ttl)

    return routes


def token_key(signing_key: str | None) -> ReadTokens:
    """The read tokens of a gateway whose JOBCAST_SIGNING_KEY is `signing_key` (None: the
    development key, which bootstrap.signer allows on one machine only)."""
    return ReadTokens(derive_token_key(signing_key or DEVELOPMENT_KEY))
