"""Following a job over HTTP: GET /messages/{offset}/stream as Server-Sent Events."""

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Annotated, TypeVar

import anyio
from fastapi import APIRouter, Depends, Header, Query
from sse_starlette import EventSourceResponse, ServerSentEvent

from contracts import Reply, ReplyKind
from contracts.principals import Principal, StillAllowed, WhoAsks, always, anyone
from ledger.keys import ensure_visible
from query.http import ERRORS, MAX_SEQ, Offset
from query.results import Results, with_progress

PING_SECONDS = 15
"""A comment line this often keeps proxies from closing a quiet stream."""

T = TypeVar("T")

SHUTDOWN_GRACE_SECONDS = 2.0
"""On shutdown, how long open streams get to end cleanly before they are cut off."""

RECHECK_SECONDS = 30.0
"""How often an open stream asks whether its caller may still read (a stream is one request:
its key or token was checked once, when it began)."""

STREAM_DOC = {
    200: {
        "description": (
            "A `text/event-stream`: one event per reply, history first, then live, until the "
            "final one (`done`, `error` or `cancelled`), then the stream closes. Each event's "
            "`id` is the reply's `seq`, its `event` the reply's `kind`, its `data` the Reply "
            "as JSON. "
            "While a step runs, its latest progress comes as events of type `progress` (data: "
            'a Reply whose value is `{"current": n, "total": n|null, "message": str|null}`, '
            "seq: the running step's), in order, before the step's result; rate-limited, so "
            "some ticks may be skipped, never the last. Progress events carry no `id`, so "
            "Last-Event-ID always names the last result seen."
        ),
        "content": {
            "text/event-stream": {
                "example": (
                    'event: progress\ndata: {"offset":0,"seq":0,"kind":"progress",'
                    '"value":{"current":40,"total":100,"message":"resizing"},'
                    '"produced_at":"2026-01-01T00:00:00.5Z"}\n\n'
                    'id: 0\nevent: result\ndata: {"offset":0,"seq":0,"kind":"result",'
                    '"value":"result1","produced_at":"2026-01-01T00:00:01Z"}\n\n'
                    'id: 3\nevent: done\ndata: {"offset":0,"seq":3,"kind":"done",'
                    '"value":"done","produced_at":"2026-01-01T00:00:04Z"}\n\n'
                )
            }
        },
    },
    **ERRORS,
}


def reply_event(reply: Reply) -> ServerSentEvent:
    """One reply as one SSE event: id = seq, event = kind, data = the Reply as JSON."""
    # NOTE: a progress event has no id, so a browser's Last-Event-ID stays the last result's
    # seq: resuming after a tick of step n must still deliver step n's result.
    seq = None if reply.kind is ReplyKind.PROGRESS else str(reply.seq)
    return ServerSentEvent(data=reply.model_dump_json(), event=reply.kind.value, id=seq)


def router(results: Results, who: WhoAsks = anyone, allowed: StillAllowed = always) -> APIRouter:
    """GET /messages/{offset}/stream, following jobs in `results` the caller (`who`) may see,
    for as long as it may (`allowed`: until its key is revoked or its token expires)."""
    routes = APIRouter(tags=["results"])

    @routes.get(
        "/messages/{offset}/stream",
        response_class=EventSourceResponse,
        responses=STREAM_DOC,  # type: ignore[arg-type]
    )
    async def stream_messages(
        offset: Offset,
        principal: Annotated[Principal, Depends(who)],
        last_event_id: Annotated[
            int | None,
            Header(
                ge=-1,
                le=MAX_SEQ,
                description="Resume after this seq (browsers send it on reconnect).",
            ),
        ] = None,
        after: Annotated[
            int,
            Query(
                ge=-1,
                le=MAX_SEQ,
                description="Start after this seq (when no Last-Event-ID is sent).",
            ),
        ] = -1,
    ) -> EventSourceResponse:
        """Follow the job live: every reply, history then live, then a final event, then close."""
        await ensure_visible(results.ledger, principal, offset)
        start = last_event_id if last_event_id is not None else after
        # NOTE: read before streaming, so an unknown offset is a plain 404, not a broken
        # stream; and a job already ended streams its history and closes, even resumed after
        # its end.
        latest = await results.progress(offset)  # before the replies, as Results.follow reads
        record = await results.job(offset)
        replies = [reply for reply in record.replies if reply.seq > start]
        history = with_progress(replies, latest, start, None)
        ended = record.state.is_final
        shutdown = anyio.Event()
        events = _events(results, offset, start, history, ended, shutdown)
        return EventSourceResponse(
            while_allowed(events, allowed, principal, shutdown),
            ping=PING_SECONDS,
            shutdown_event=shutdown,
            shutdown_grace_period=SHUTDOWN_GRACE_SECONDS,
        )

    return routes


async def _events(
    found: Results,
    offset: int,
    after: int,
    history: list[Reply],
    ended: bool,
    shutdown: anyio.Event,
) -> AsyncGenerator[ServerSentEvent, None]:
    shown: Reply | None = None
    for reply in history:
        yield reply_event(reply)
        if reply.kind is ReplyKind.PROGRESS:
            shown = reply
            continue
        after = reply.seq
        if reply.is_final:
            return
    if ended:
        return
    # NOTE: closed explicitly: when sse-starlette closes this generator (a send failed), the
    # follower inside must end now, not whenever the garbage collector gets to it.
    async with contextlib.aclosing(_until(shutdown, found.follow(offset, after, shown))) as live:
        async for reply in live:
            yield reply_event(reply)


async def while_allowed(
    events: AsyncGenerator[T, None],
    allowed: StillAllowed,
    principal: Principal,
    shutdown: anyio.Event,
) -> AsyncIterator[T]:
    """`events`, asking every RECHECK_SECONDS whether `principal` may still read; once not,
    `shutdown` is set and the stream ends cleanly (the client's reconnect is then refused)."""
    # NOTE: documented as reading only until the key is revoked or the token expires; the
    # feed never ends by itself, and a job's stream lasts as long as the job.
    checking = asyncio.ensure_future(_until_refused(allowed, principal, shutdown))
    try:
        async with contextlib.aclosing(events):
            async for event in events:
                yield event
    finally:
        checking.cancel()


async def _until_refused(
    allowed: StillAllowed, principal: Principal, shutdown: anyio.Event
) -> None:
    while True:
        await asyncio.sleep(RECHECK_SECONDS)
        if not await allowed(principal):
            shutdown.set()
            return


async def _until(
    shutdown: anyio.Event, replies: AsyncGenerator[T, None]
) -> AsyncGenerator[T, None]:
    """`replies` until the server shuts down; then the stream ends cleanly (not cut off), and
    the client resumes with Last-Event-ID wherever it reconnects. However this generator ends
    (the job's end, shutdown, the client gone), `replies` ends with it."""
    stopping = asyncio.ensure_future(shutdown.wait())
    step: asyncio.Future[T] | None = None
    try:
        while True:
            step = asyncio.ensure_future(anext(replies))
            await asyncio.wait({step, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if not step.done():
                return
            try:
                reply = step.result()
            except StopAsyncIteration:
                return
            step = None
            yield reply
    finally:
        stopping.cancel()
        # NOTE: a client that goes away cancels the task reading this stream while `step`
        # waits for the next reply; left alone, `step` would go on waiting (and holding its
        # watch) until the job's next reply. Cancelling it runs the cancellation through the
        # follower, which ends it; a follower not inside a step is closed instead.
        if step is not None and not step.done():
            step.cancel()
        else:
            await replies.aclose()
