"""GET /jobs (the list), GET /jobs/stream (the feed of many jobs) and GET /stats."""

import contextlib
from collections.abc import AsyncGenerator
from datetime import UTC, datetime
from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Header, Query
from fastapi.exceptions import RequestValidationError
from pydantic import AfterValidator
from sse_starlette import EventSourceResponse, ServerSentEvent

from contracts import JobState
from contracts.listing import (
    DEFAULT_PAGE,
    DEFAULT_STATS_MINUTES,
    MAX_PAGE,
    MAX_STATS_MINUTES,
    JobFilter,
    JobPage,
    Stats,
)
from contracts.messages import MAX_OFFSET, NAME_LENGTH, TAG_LENGTH
from contracts.principals import Principal, StillAllowed, WhoAsks, always, anyone
from contracts.text import PRINTABLE
from query.feed_slots import FeedSlots
from query.listing import InvalidCursorError, Listing
from query.sse import PING_SECONDS, SHUTDOWN_GRACE_SECONDS, _until, while_allowed

TAG_PATTERN = r"^[A-Za-z0-9_.:/-]+$"

StateQuery = Annotated[JobState | None, Query(description="Only jobs in this state (now).")]
FnQuery = Annotated[
    str | None,
    Query(min_length=1, max_length=NAME_LENGTH, description="Only this pipeline."),
    PRINTABLE,  # as a name is on POST /schedule: a NUL broke PostgreSQL's query (a 500)
]
TagQuery = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=TAG_LENGTH,
        pattern=TAG_PATTERN,
        description="Only jobs with this tag.",
    ),
]


def _in_utc(moment: datetime | None) -> datetime | None:
    """`moment` if the ledgers can compare it: one that is no time in UTC (0001-01-01 east of
    Greenwich, 9999-12-31 west of it) raised OverflowError in both, a 500."""
    if moment is not None and moment.tzinfo is not None:
        try:
            moment.astimezone(UTC)
        except OverflowError:
            raise ValueError("out of range once in UTC (0001-01-01 to 9999-12-31)") from None
    return moment


TimeQuery = AfterValidator(_in_utc)

FEED_DOC = {
    200: {
        "description": (
            "A `text/event-stream` that does not end: first a frame with only an `id` (the "
            "feed's position, so a reconnect resumes from there), then one event per reply of "
            "every matching job, in the order the ledger recorded them (each job's replies in "
            "seq order). Each event's `id` is the reply's feed cursor (send it back as "
            "`Last-Event-ID`), its `event` the reply's `kind`, its `data` the Reply as JSON."
        ),
        "content": {
            "text/event-stream": {
                "example": (
                    "id: 41\n\n"
                    'id: 42\nevent: result\ndata: {"offset":7,"seq":0,"kind":"result",'
                    '"value":"result1","produced_at":"2026-01-01T00:00:01Z"}\n\n'
                )
            }
        },
    },
    422: {"description": "A filter or Last-Event-ID that is not valid."},
    429: {"description": "The key holds JOBCAST_MAX_FEEDS_PER_KEY feeds open already."},
    503: {"description": "The ledger cannot be read right now."},
}

LIST_ERRORS = {
    422: {
        "description": "A filter, `limit` or `cursor` that is not valid (a cursor not handed out)."
    },
    503: {"description": "The ledger cannot be read right now."},
}
STATS_ERRORS = {
    422: {"description": "`minutes` out of 1..1440."},
    503: {"description": "The ledger or RabbitMQ cannot be read right now."},
}


def router(
    listing: Listing,
    who: WhoAsks = anyone,
    allowed: StillAllowed = always,
    feeds: FeedSlots | None = None,
) -> APIRouter:
    """GET /jobs, GET /jobs/stream and GET /stats, answered by `listing`; the list and the
    feed show only the caller's (`who`) own jobs, unless it is an admin, and the feed goes on
    only while the caller may read (`allowed`: its key not revoked), a key holding at most
    `feeds.per_key` of them at once."""
    slots = feeds if feeds is not None else FeedSlots()
    routes = APIRouter(tags=["jobs list"])

    @routes.get("/jobs", response_model=JobPage, responses=LIST_ERRORS)  # type: ignore[arg-type]
    async def list_jobs(
        principal: Annotated[Principal, Depends(who)],
        state: StateQuery = None,
        fn: FnQuery = None,
        tag: TagQuery = None,
        since: Annotated[
            datetime | None, Query(description="Created at or after this time."), TimeQuery
        ] = None,
        until: Annotated[
            datetime | None, Query(description="Created before this time."), TimeQuery
        ] = None,
        limit: Annotated[
            int, Query(ge=1, le=MAX_PAGE, description="Jobs per page.")
        ] = DEFAULT_PAGE,
        cursor: Annotated[
            str | None, Query(max_length=64, description="The `next` of the previous page.")
        ] = None,
    ) -> JobPage:
        """Jobs newest first, filtered; pages continue with the answer's `next`."""
        found = JobFilter(
            state=state, fn=fn, tag=tag, since=since, until=until, owner=only(principal)
        )
        try:
            return await listing.page(found, limit, cursor)
        except InvalidCursorError as exc:
            raise RequestValidationError(
                [
                    {
                        "type": "value_error",
                        "loc": ("query", "cursor"),
                        "msg": str(exc),
                        "input": cursor,
                    }
                ]
            ) from None

    @routes.get(
        "/jobs/stream",
        response_class=EventSourceResponse,
        responses=FEED_DOC,  # type: ignore[arg-type]
    )
    async def stream_jobs(
        principal: Annotated[Principal, Depends(who)],
        state: StateQuery = None,
        fn: FnQuery = None,
        tag: TagQuery = None,
        last_event_id: Annotated[
            int | None,
            Header(ge=0, le=MAX_OFFSET, description="Resume after this feed cursor."),
        ] = None,
        after: Annotated[
            int | None,
            Query(
                ge=0,
                le=MAX_OFFSET,
                description="Start after this feed cursor (0: from the first reply ever); "
                "without it or Last-Event-ID, from now.",
            ),
        ] = None,
    ) -> EventSourceResponse:
        """Follow every matching job live: one event per reply, resumable with Last-Event-ID."""
        found = JobFilter(state=state, fn=fn, tag=tag, owner=only(principal))
        start = last_event_id if last_event_id is not None else after
        # NOTE: read before streaming, so a ledger that is down is a plain 503
        position = await listing.end() if start is None else start
        shutdown = anyio.Event()
        events = _events(listing, found, position, shutdown)
        return EventSourceResponse(
            slots.hold(principal, while_allowed(events, allowed, principal, shutdown)),
            ping=PING_SECONDS,
            shutdown_event=shutdown,
            shutdown_grace_period=SHUTDOWN_GRACE_SECONDS,
        )

    @routes.get("/stats", response_model=Stats, responses=STATS_ERRORS)  # type: ignore[arg-type]
    async def read_stats(
        minutes: Annotated[
            int, Query(ge=1, le=MAX_STATS_MINUTES, description="The window the counts cover.")
        ] = DEFAULT_STATS_MINUTES,
    ) -> Stats:
        """Jobs by state, queue depths, workers, dead letters and completed jobs per minute."""
        return await listing.stats(minutes)

    return routes


def only(principal: Principal) -> str | None:
    """The owner a list or feed is narrowed to: the key's name; None (every job) for an admin.
    A principal with no name (a scoped read token) sees no list: "" is no key's name."""
    if principal.admin:
        return None
    return principal.name if principal.name is not None else ""


async def _events(
    listing: Listing, found: JobFilter, after: int, shutdown: anyio.Event
) -> AsyncGenerator[ServerSentEvent, None]:
    # NOTE: an id-only frame first: a browser's EventSource (and follow_many) keeps it as the
    # last event id, so a stream that drops before any reply still resumes where it began.
    yield ServerSentEvent(id=str(after), comment="position")
    async with contextlib.aclosing(_until(shutdown, listing.follow(found, after))) as live:
        async for cursor, reply in live:
            yield ServerSentEvent(
                data=reply.model_dump_json(), event=reply.kind.value, id=str(cursor)
            )
