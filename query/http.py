"""The HTTP query side: GET /messages/{offset} and GET /jobs/{offset}."""

import asyncio
from collections.abc import Awaitable
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BeforeValidator, JsonValue

from contracts import JobRecord
from contracts.principals import Principal, WhoAsks, anyone
from ledger.keys import ensure_visible
from query.results import Results

# NOTE: both ledgers keep offsets as 64-bit and seqs as 32-bit integers; a larger number in a
# URL must be a 422 (it was never handed out), not an overflow inside the database driver.
MAX_OFFSET = 2**63 - 1
MAX_SEQ = 2**31 - 1


def _plain_digits(value: object) -> object:
    """A path offset as sent: only the digits 0-9 (int() would also take "+1", "1_000", " 1")."""
    if isinstance(value, str) and not (value.isascii() and value.isdigit()):
        raise ValueError("an offset is written with the digits 0-9 only")
    return value


Offset = Annotated[
    int,
    BeforeValidator(_plain_digits),
    Path(ge=0, le=MAX_OFFSET, description="The offset POST /schedule answered with."),
]

ERRORS = {
    404: {
        "description": "Offset not found: it was never handed out.",
        "content": {"application/json": {"example": {"detail": "Offset not found"}}},
    },
    410: {
        "description": "Offset expired: the job was purged (JOBCAST_RETENTION, DELETE).",
        "content": {"application/json": {"example": {"detail": "Offset expired"}}},
    },
    422: {"description": "The offset is not a non-negative integer."},
    503: {"description": "The ledger cannot be read right now."},
}

MAX_WAIT_SECONDS = 60.0


def router(results: Results, who: WhoAsks = anyone) -> APIRouter:
    """GET /messages/{offset} (with the long poll) and GET /jobs/{offset}, read from `results`,
    for the jobs the caller (`who`: contracts/principals.py) may see; another's is not found."""
    routes = APIRouter(tags=["results"])

    @routes.get("/messages/{offset}", response_model=list[JsonValue], responses=ERRORS)  # type: ignore[arg-type]
    async def read_messages(
        offset: Offset,
        request: Request,
        principal: Annotated[Principal, Depends(who)],
        wait: Annotated[
            float,
            Query(
                ge=0,
                le=MAX_WAIT_SECONDS,
                description="Long poll: wait up to this many seconds for a reply newer than "
                "`after`.",
            ),
        ] = 0,
        after: Annotated[
            int, Query(ge=-1, le=MAX_SEQ, description="With wait: the last seq already seen.")
        ] = -1,
    ) -> list[JsonValue]:
        """The job's results so far, in step order; `[]` before the first."""
        await ensure_visible(results.ledger, principal, offset)
        if wait > 0:
            record = await results.job(offset)
            if record.state.is_final:  # nothing newer will ever come
                return [reply.value for reply in record.replies]
            if not await _while_connected(request, results.wait_for(offset, after, timeout=wait)):
                return []  # the caller went away: nobody reads this answer
        return await results.messages(offset)

    @routes.get("/jobs/{offset}", response_model=JobRecord, responses=ERRORS)  # type: ignore[arg-type]
    async def read_job(offset: Offset, principal: Annotated[Principal, Depends(who)]) -> JobRecord:
        """The job's state, request, replies, timestamps and error."""
        await ensure_visible(results.ledger, principal, offset)
        return await results.job(offset)

    return routes


async def _while_connected(request: Request, waiting: Awaitable[object]) -> bool:
    """Await `waiting` unless the client goes away first; True if it finished."""
    # NOTE: a request handler is not cancelled when its client disconnects; without this a
    # long poll whose caller left would keep its watch (and re-read on every reply) for up
    # to `wait` seconds.
    finished = asyncio.ensure_future(waiting)
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({finished, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        finished.cancel()
    if finished.done():
        finished.result()  # its error, if any (an unknown offset, the ledger down)
        return True
    gone.result()  # an error while reading the request (a body over the limit)
    return False


async def _disconnected(request: Request) -> None:
    """Return once the client has gone (ASGI `http.disconnect`)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass  # a GET's (empty) body
