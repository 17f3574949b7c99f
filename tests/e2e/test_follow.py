"""Following jobs live over SSE, long poll and the client library, against `jobcast serve`."""

import asyncio
import time

import httpx
import pytest

from client import JobcastClient, SyncJobcastClient
from contracts import ReplyKind, UnknownOffsetError
from tests.e2e.sse import read_events
from tests.support.waiting import eventually

JOB = {"deployment": "Docker", "framework": "FastAPI", "fn": "default_fn"}
DONE = ["result1", "result2", "result3", "done"]


async def _schedule(http: httpx.AsyncClient, job: dict[str, str] = JOB) -> int:
    answer = await http.post("/schedule", json=job)
    assert answer.status_code == 200, answer.text
    return int(answer.json()["offset"])


async def test_sse_history_then_live_then_final_event_and_close(server):
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        offset = await _schedule(http)
        # join once the first step is recorded: history first, then the rest live
        await eventually(
            lambda: http.get(f"/messages/{offset}"), until=lambda r: r.json(), what="first result"
        )
        began = time.monotonic()
        events = await read_events(http, f"/messages/{offset}/stream")
        waited = time.monotonic() - began

    assert [e.id for e in events] == ["0", "1", "2", "3"]
    assert [e.event for e in events] == ["result", "result", "result", "done"]
    assert [e.data["value"] for e in events] == DONE
    assert all(e.data["offset"] == offset for e in events)
    # some of it arrived live: the stream stayed open while steps ran (0.2 s each)
    assert waited > 0.2


async def test_sse_resumes_after_last_event_id_without_gap_or_repeat(server):
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        offset = await _schedule(http)
        first = await read_events(http, f"/messages/{offset}/stream", limit=2)
        assert [e.id for e in first] == ["0", "1"]
        rest = await read_events(
            http, f"/messages/{offset}/stream", headers={"Last-Event-ID": first[-1].id}
        )
        assert [e.id for e in rest] == ["2", "3"]
        assert [e.data["value"] for e in first + rest] == DONE
        # resuming after the final event: nothing more, the stream just closes
        assert (
            await read_events(http, f"/messages/{offset}/stream", headers={"Last-Event-ID": "3"})
            == []
        )


async def test_sse_failed_job_ends_with_an_error_event(server):
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        offset = await _schedule(http, {**JOB, "fn": "breaks"})
        events = await read_events(http, f"/messages/{offset}/stream")
    assert [(e.id, e.event) for e in events] == [("0", "result"), ("1", "error")]
    assert "the disk is on fire" in str(events[-1].data["value"])


async def test_two_followers_of_one_job_see_the_same_events(server):
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        offset = await _schedule(http)
        one, two = await asyncio.gather(
            read_events(http, f"/messages/{offset}/stream"),
            read_events(http, f"/messages/{offset}/stream"),
        )
    assert [e.data for e in one] == [e.data for e in two]
    assert [e.data["value"] for e in one] == DONE


async def test_sse_unknown_offset_is_404_and_a_bad_last_event_id_422(server):
    async with httpx.AsyncClient(base_url=server.url) as http:
        answer = await http.get("/messages/999/stream")
        assert (answer.status_code, answer.json()) == (404, {"detail": "Offset not found"})
        offset = await _schedule(http)
        for bad in ("x", "-2", str(2**40)):
            answer = await http.get(f"/messages/{offset}/stream", headers={"Last-Event-ID": bad})
            assert answer.status_code == 422, bad


async def test_long_poll_returns_as_soon_as_there_is_something_newer(server):
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        offset = await _schedule(http)
        seen = -1
        snapshots = []
        while not snapshots or snapshots[-1][-1:] != ["done"]:
            began = time.monotonic()
            answer = await http.get(f"/messages/{offset}", params={"wait": 10, "after": seen})
            assert answer.status_code == 200
            assert time.monotonic() - began < 5  # a step takes 0.2 s, never the full wait
            snapshots.append(answer.json())
            seen = len(snapshots[-1]) - 1
        assert snapshots[-1] == DONE
        assert len(snapshots) >= 2  # woken step by step, not once at the end
        # the job has ended, nothing newer will come: answered at once, not at the timeout
        began = time.monotonic()
        answer = await http.get(f"/messages/{offset}", params={"wait": 30, "after": 3})
        assert answer.json() == DONE
        assert time.monotonic() - began < 5
        # a running job with nothing newer: the timeout answers with what there is
        running = await _schedule(http, {**JOB, "fn": "breaks"})
        began = time.monotonic()
        answer = await http.get(f"/messages/{running}", params={"wait": 0.1, "after": 5})
        assert answer.status_code == 200
        assert time.monotonic() - began < 5


@pytest.mark.parametrize("transport", ["http", "amqp"])
async def test_client_follow_joins_a_running_job_without_gap_or_duplicate(
    server, jobcast_env, transport
):
    amqp_url = jobcast_env["JOBCAST_AMQP_URL"] if transport == "amqp" else None
    async with JobcastClient(server.url, amqp_url=amqp_url) as client:
        offset = await client.schedule(fn="default_fn", deployment="Docker", framework="FastAPI")
        # the job started before this follower subscribed
        await eventually(lambda: client.messages(offset), what="first result")
        replies = [reply async for reply in client.follow(offset)]
        record = await client.result(offset)

    assert [r.seq for r in replies] == [0, 1, 2, 3]
    assert [r.value for r in replies] == DONE
    assert replies[-1].kind is ReplyKind.DONE
    assert record.state == "done"
    assert [r.value for r in record.replies] == DONE


async def test_client_follows_from_the_start_over_amqp_many_jobs(server, jobcast_env):
    amqp_url = jobcast_env["JOBCAST_AMQP_URL"]
    async with JobcastClient(server.url, amqp_url=amqp_url) as client:
        offsets = [
            await client.schedule(fn="default_fn", deployment="Docker", framework="FastAPI")
            for _ in range(4)
        ]

        async def values(offset: int) -> list[object]:
            return [reply.value async for reply in client.follow(offset)]

        followed = await asyncio.gather(*(values(o) for o in offsets))
    assert followed == [DONE] * 4


async def test_client_unknown_offset(server):
    async with JobcastClient(server.url) as client:
        with pytest.raises(UnknownOffsetError):
            await client.status(999)
        with pytest.raises(UnknownOffsetError):
            [r async for r in client.follow(999)]


def test_sync_client_for_scripts(server):
    with SyncJobcastClient(server.url) as client:
        offset = client.schedule(fn="breaks", deployment="Docker", framework="FastAPI")
        kinds = [reply.kind for reply in client.follow(offset)]
        record = client.result(offset)
    assert kinds == [ReplyKind.RESULT, ReplyKind.ERROR]
    assert record.state == "failed"
    assert "the disk is on fire" in (record.error or "")


@pytest.mark.parametrize("transport", ["http", "amqp"])
async def test_client_resumes_after_a_seq_and_ends_at_once_after_the_end(
    server, jobcast_env, transport
):
    amqp_url = jobcast_env["JOBCAST_AMQP_URL"] if transport == "amqp" else None
    async with JobcastClient(server.url, amqp_url=amqp_url) as client:
        offset = await client.schedule(fn="default_fn", deployment="Docker", framework="FastAPI")
        assert [r.seq async for r in client.follow(offset, after=1)] == [2, 3]
        began = time.monotonic()
        assert [r async for r in client.follow(offset, after=3)] == []
        assert time.monotonic() - began < 5


async def test_open_streams_end_cleanly_when_the_gateway_stops(spawn, jobcast_env):
    # NOTE: no worker: the job stays queued, so its stream stays open until the gateway stops
    env = {**jobcast_env, "JOBCAST_ACCESS_LOG": "true"}
    server = spawn("gateway", env, name="gateway")
    server.wait_http()
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        offset = await _schedule(http)
        following = asyncio.create_task(read_events(http, f"/messages/{offset}/stream"))
        await asyncio.to_thread(server.wait_log, f"GET /messages/{offset}/stream")
        began = time.monotonic()
        assert await asyncio.to_thread(server.terminate) == 0
        # the response ends properly (an abrupt end raises in the reader); nothing was sent yet
        assert await asyncio.wait_for(following, 10) == []
    assert time.monotonic() - began < 8  # not held open until the graceful timeout
    assert "without completing response" not in server.log()
