"""The client's follow() waits out a gateway restart for as long as the caller allows
(issue 9, item 6): no hidden give-up after a few reconnects."""

import contextlib
import time
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from client import GatewayUnreachableError, JobcastClient, UnavailableError
from client import feed as client_feed
from client import http as client_http
from contracts import JobRecord, JobRequest, JobState, Reply, ReplyKind

OFFSET = 7
REQUEST = JobRequest(deployment="Docker", framework="FastAPI", fn="default_fn")


def reply(seq: int, kind: ReplyKind = ReplyKind.RESULT) -> Reply:
    return Reply(offset=OFFSET, seq=seq, kind=kind, value=f"v{seq}")


REPLIES = [reply(0), reply(1), reply(2, ReplyKind.DONE)]


def stream(*replies: Reply) -> httpx.Response:
    body = "".join(
        f"id: {r.seq}\nevent: {r.kind}\ndata: {r.model_dump_json()}\n\n" for r in replies
    )
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, text=body)


def running() -> httpx.Response:
    record = JobRecord(
        offset=OFFSET,
        state=JobState.RUNNING,
        request=REQUEST,
        replies=[],
        created_at="2026-01-01T00:00:00Z",  # type: ignore[arg-type]
        updated_at="2026-01-01T00:00:00Z",  # type: ignore[arg-type]
    )
    return httpx.Response(200, content=record.model_dump_json())


class Gateway:
    """A gateway that streams the first reply, then is down for `down` requests (or answers
    `down_status`), then streams the rest from the Last-Event-ID it is given."""

    def __init__(self, down: int, down_status: int | None = None) -> None:
        self.down = down
        self.down_status = down_status
        self.streams: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/jobs/"):
            return self._unless_down(request, running)
        self.streams.append(request.headers["last-event-id"])
        if len(self.streams) == 1:
            return stream(REPLIES[0])  # then the stream closes: the gateway is stopping
        after = int(request.headers["last-event-id"])
        return self._unless_down(request, lambda: stream(*REPLIES[after + 1 :]))

    def _unless_down(
        self, request: httpx.Request, answer: Callable[[], httpx.Response]
    ) -> httpx.Response:
        if self.down > 0:
            self.down -= 1
            if self.down_status is not None:
                return httpx.Response(self.down_status, json={"detail": "restarting"})
            raise httpx.ConnectError("connection refused", request=request)
        return answer()


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reconnect at once: these tests count attempts, not seconds."""
    monkeypatch.setattr(client_http, "BACKOFF_SECONDS", 0.001, raising=False)
    monkeypatch.setattr(client_http, "BACKOFF_MAX_SECONDS", 0.001, raising=False)


def client_for(gateway: Gateway) -> JobcastClient:
    client = JobcastClient("http://gateway")
    client.http._http = httpx.AsyncClient(
        base_url="http://gateway", transport=httpx.MockTransport(gateway)
    )
    return client


async def test_follow_keeps_trying_through_a_long_outage_and_resumes_after_the_last_seq():
    gateway = Gateway(down=200)  # far more failed reconnects than the old hidden limit (5)
    async with client_for(gateway) as client:
        seen = [r async for r in client.follow(OFFSET)]
    assert seen == REPLIES
    assert gateway.streams[0] == "-1"
    assert set(gateway.streams[1:]) == {"0"}  # every reconnect resumed after seq 0


@pytest.mark.parametrize("status", [502, 503, 504])
async def test_follow_waits_out_a_gateway_that_answers_not_now(status):
    gateway = Gateway(down=50, down_status=status)
    async with client_for(gateway) as client:
        assert [r async for r in client.follow(OFFSET)] == REPLIES


async def test_follow_gives_up_after_the_callers_timeout_with_what_it_saw():
    gateway = Gateway(down=10**9)
    seen: list[Reply] = []

    async def follow(client: JobcastClient) -> None:
        async for got in client.follow(OFFSET, timeout=0.5):
            seen.append(got)

    began = time.monotonic()
    async with client_for(gateway) as client:
        with pytest.raises(TimeoutError, match=f"offset {OFFSET}: no final reply within 0.5s"):
            await follow(client)
    assert 0.5 <= time.monotonic() - began < 3
    assert seen == REPLIES[:1]


async def test_a_gateway_never_reached_fails_at_once():
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    async with client_for(down) as client:  # type: ignore[arg-type]
        with pytest.raises(GatewayUnreachableError):
            [r async for r in client.follow(OFFSET)]


async def test_a_first_answer_503_fails_at_once():
    def unavailable(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, json={"detail": "ledger down"})

    async with client_for(unavailable) as client:  # type: ignore[arg-type]
        with pytest.raises(UnavailableError):
            [r async for r in client.follow(OFFSET)]


async def test_follow_reads_a_result_with_unicode_line_separators_whole():
    # Found by review: httpx-sse before 0.4.2 split an SSE line at U+2028, U+2029 and U+0085
    # too (valid unescaped inside a JSON string, and pydantic writes them raw), so a result
    # carrying one came apart; pyproject now asks for httpx-sse>=0.4.2.
    text = "line\u2028separator\u2029paragraph\u0085next"
    replies = [
        Reply(offset=OFFSET, seq=0, kind=ReplyKind.RESULT, value=text),
        reply(1, ReplyKind.DONE),
    ]
    assert "\u2028" in replies[0].model_dump_json()  # written raw, not escaped

    def gateway(request: httpx.Request) -> httpx.Response:
        return stream(*replies)

    client = JobcastClient("http://gateway")
    client.http._http = httpx.AsyncClient(
        base_url="http://gateway", transport=httpx.MockTransport(gateway)
    )
    async with client:
        assert [r async for r in client.follow(OFFSET)] == replies


async def test_a_resuming_feed_waits_out_a_429_while_the_gateway_still_counts_the_dropped_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the gateway counts a key's open feeds (JOBCAST_MAX_FEEDS_PER_KEY) and may not yet have
    # noticed the one that dropped: the resume is answered 429 once, then goes through
    monkeypatch.setattr(client_feed, "BACKOFF_SECONDS", 0.001)
    first, last = reply(0), reply(1, ReplyKind.DONE)
    answers: list[str | int] = [
        f"id: 1\nevent: result\ndata: {first.model_dump_json()}\n\n",
        429,
        f"id: 2\nevent: done\ndata: {last.model_dump_json()}\n\n",
    ]
    asked: list[str | None] = []

    def gateway(request: httpx.Request) -> httpx.Response:
        asked.append(request.headers.get("last-event-id"))
        answer = answers.pop(0)
        if isinstance(answer, int):
            return httpx.Response(answer, json={"detail": "Too many open feeds for this key"})
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, text=answer)

    seen = []
    async with feed_for(gateway) as feed:
        async for cursor, got in feed.follow_many(after=0):
            seen.append((cursor, got))
            if got.kind is ReplyKind.DONE:
                break
    assert seen == [(1, first), (2, last)]
    assert asked == ["0", "1", "1"]


async def test_a_feed_refused_at_once_with_429_says_why() -> None:
    def gateway(request: httpx.Request) -> httpx.Response:
        detail = "Too many open feeds for this key: at most 2 at once (JOBCAST_MAX_FEEDS_PER_KEY)"
        return httpx.Response(429, json={"detail": detail})

    async with feed_for(gateway) as feed:
        with pytest.raises(GatewayUnreachableError, match="JOBCAST_MAX_FEEDS_PER_KEY"):
            async for _ in feed.follow_many():
                pass


@contextlib.asynccontextmanager
async def feed_for(
    gateway: Callable[[httpx.Request], httpx.Response],
) -> AsyncIterator[client_feed.FeedTransport]:
    feed = client_feed.FeedTransport("http://gateway")
    feed._http = httpx.AsyncClient(
        base_url="http://gateway", transport=httpx.MockTransport(gateway)
    )
    try:
        yield feed
    finally:
        await feed.close()
