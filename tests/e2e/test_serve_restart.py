"""Restarting `jobcast serve` with a long step in flight (issue 9, item 6): HTTP keeps answering
while the in-process worker drains, and a follower started before the restart sees the job
through to `done` once the service is back, however long it was down."""

import asyncio
import subprocess
import time

import httpx

from client import JobcastClient, Reply
from harness.processes import JOBCAST
from tests.support.waiting import eventually

STEP_SECONDS = 3.0
"""default_fn's three steps take this long each: SIGTERM lands in the middle of one."""
DOWN_SECONDS = 12.0
"""How long the service stays down: longer than the ~11 s after which follow() used to give up."""


async def test_serve_answers_while_draining_and_a_follower_sees_the_restart_through(
    spawn, jobcast_env
):
    env = {**jobcast_env, "JOBCAST_STEP_SECONDS": str(STEP_SECONDS)}
    server = spawn("serve", env, name="serve")
    server.wait_http()
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=10) as http,
        JobcastClient(server.url) as client,
    ):
        offset = await client.schedule(fn="default_fn", deployment="Docker", framework="FastAPI")
        seen: list[Reply] = []

        async def follow() -> None:
            async for reply in client.follow(offset):
                seen.append(reply)

        following = asyncio.create_task(follow())
        await eventually(lambda: _values(http, offset), until=lambda v: len(v) == 1, timeout=20)

        # step 1 is in flight: SIGTERM drains it while HTTP still answers
        server.signal(15)
        ready = await eventually(
            lambda: http.get("/ready"), until=lambda r: r.status_code == 503, what="draining"
        )
        assert ready.json()["accepting_jobs"] is False
        answer = await http.get(f"/messages/{offset}")
        assert answer.status_code == 200
        assert answer.json() in (["result1"], ["result1", "result2"])
        assert server.proc is not None
        assert server.proc.poll() is None, "the worker drained after HTTP stopped, not before"

        assert await asyncio.to_thread(server.wait, 30) == 0, server.log()
        assert "handed back" in server.log()

        # down for longer than the old hidden limit: the follower keeps trying
        down_until = time.monotonic() + DOWN_SECONDS
        while time.monotonic() < down_until:
            assert not following.done(), following
            await asyncio.sleep(0.2)

        spawn("serve", env, name="serve-again").wait_http()
        await asyncio.wait_for(following, 60)
        assert [r.seq for r in seen] == [0, 1, 2, 3]
        assert [r.value for r in seen] == ["result1", "result2", "result3", "done"]


async def _values(http: httpx.AsyncClient, offset: int) -> list[object]:
    answer = await http.get(f"/messages/{offset}")
    return list(answer.json()) if answer.status_code == 200 else []


async def test_watch_gives_up_only_when_its_timeout_says_so(spawn, jobcast_env):
    # NOTE: a gateway without a worker: the job stays queued, so only the timeout ends the watch
    gateway = spawn("gateway", jobcast_env, name="gateway")
    gateway.wait_http()
    async with JobcastClient(gateway.url) as client:
        offset = await client.schedule(fn="default_fn", deployment="Docker", framework="FastAPI")
    began = time.monotonic()
    run = await asyncio.to_thread(
        subprocess.run,
        [*JOBCAST, "watch", str(offset), "--timeout", "2", "--url", gateway.url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 5, run.stderr
    assert f"offset {offset}: no final reply within 2.0s" in run.stderr
    assert 2 <= time.monotonic() - began < 20
