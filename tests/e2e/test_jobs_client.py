"""The client library's follow_many, list_jobs and stats, and `jobcast ls` / `jobcast watch
--tag`, against `jobcast serve` (and across a restart of it)."""

import asyncio
import contextlib
import os
import signal
import subprocess

import orjson

from client import JobcastClient, JobRequest
from harness.processes import JOBCAST
from tests.support.waiting import eventually

JOB = {"deployment": "Docker", "framework": "FastAPI", "fn": "default_fn"}


async def schedule(jobs: JobcastClient, *tags: str, fn: str = "default_fn") -> int:
    request = JobRequest(deployment="Docker", framework="FastAPI", fn=fn, tags=list(tags))
    return (await jobs.schedule_request(request)).offset


async def test_follow_many_gives_the_tagged_jobs_replies_and_resumes_from_a_cursor(server):
    async with JobcastClient(server.url) as jobs:
        feed = jobs.follow_many(tag="lib", after=0)
        first = asyncio.ensure_future(anext(feed))
        a = await schedule(jobs, "lib")
        await schedule(jobs)  # untagged: not in this feed
        b = await schedule(jobs, "x", "lib")
        seen = [await asyncio.wait_for(first, 30)]
        seen += [await asyncio.wait_for(anext(feed), 30) for _ in range(7)]
        await feed.aclose()  # type: ignore[attr-defined]
        cursors = [cursor for cursor, _ in seen]
        assert cursors == sorted(cursors)
        assert len(set(cursors)) == 8
        assert {reply.offset for _, reply in seen} == {a, b}
        for offset in (a, b):
            assert [r.seq for _, r in seen if r.offset == offset] == [0, 1, 2, 3]
        # resumed from the fourth cursor: exactly the last four again
        again = jobs.follow_many(tag="lib", after=cursors[3])
        rest = [await asyncio.wait_for(anext(again), 10) for _ in range(4)]
        await again.aclose()  # type: ignore[attr-defined]
        assert rest == seen[4:]

        page = await jobs.list_jobs(tag="lib")
        assert [row.offset for row in page.jobs] == [b, a]
        assert all(row.state == "done" and row.steps == 3 for row in page.jobs)
        stats = await jobs.stats(minutes=5)
        assert stats.counts["done"] == 3
        assert stats.workers == 1


async def test_follow_many_waits_out_a_restart_of_the_gateway_without_gap_or_repeat(
    spawn, jobcast_env
):
    server = spawn("serve", jobcast_env, name="serve")
    server.wait_http()
    async with JobcastClient(server.url) as jobs:
        seen: list[tuple[int, object]] = []

        async def follow() -> None:
            async for cursor, reply in jobs.follow_many(after=0):
                seen.append((cursor, (reply.offset, reply.seq)))

        following = asyncio.create_task(follow())
        offsets = [await schedule(jobs) for _ in range(2)]
        await eventually(lambda: _count(seen), until=lambda n: n >= 8, what="two jobs", timeout=30)
        assert await asyncio.to_thread(server.terminate) == 0
        again = spawn("serve", {**jobcast_env, "JOBCAST_PORT": str(server.port)}, name="again")
        again.wait_http()
        offsets += [await schedule(jobs) for _ in range(2)]
        await eventually(
            lambda: _count(seen), until=lambda n: n >= 16, what="four jobs", timeout=60
        )
        following.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await following
    assert [cursor for cursor, _ in seen] == list(range(1, 17))
    assert sorted(pair for _, pair in seen) == [(o, s) for o in offsets for s in range(4)]


async def _count(items: list[object]) -> int:
    return len(items)


def jobcast(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*JOBCAST, *args, "--url", url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200"},
    )


async def test_ls_shows_a_table_or_json_lines_filtered_by_tag(server):
    async with JobcastClient(server.url) as jobs:
        await schedule(jobs)
        # an unknown pipeline fails at once; its name is shown as text, never as rich markup
        tagged = await schedule(jobs, "night", fn="[red]nowhere")
        await eventually(
            lambda: jobs.status(tagged), until=lambda r: r.state == "failed", what="failed"
        )
    table = await asyncio.to_thread(jobcast, "ls", url=server.url)
    assert table.returncode == 0, table.stderr
    assert "offset" in table.stdout
    assert "failed" in table.stdout
    assert "[red]nowhere" in table.stdout
    tagged_only = await asyncio.to_thread(jobcast, "ls", "--json", "--tag", "night", url=server.url)
    rows = [orjson.loads(line) for line in tagged_only.stdout.splitlines()]
    assert [(row["offset"], row["state"], row["tags"]) for row in rows] == [
        (tagged, "failed", ["night"])
    ]
    assert rows[0]["error"]
    refused = await asyncio.to_thread(jobcast, "ls", "--tag", "a b", url=server.url)
    assert refused.returncode == 2


async def test_watch_tag_prints_each_reply_of_the_tagged_jobs_live(server):
    async with JobcastClient(server.url) as jobs:
        await schedule(jobs)
        offset = await schedule(jobs, "w")
    watcher = await asyncio.create_subprocess_exec(
        *JOBCAST,
        *("watch", "--tag", "w", "--after", "0", "--json", "--url", server.url),
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "NO_COLOR": "1"},
    )
    try:
        assert watcher.stdout is not None
        lines = [
            orjson.loads(await asyncio.wait_for(watcher.stdout.readline(), 30)) for _ in range(4)
        ]
    finally:
        watcher.send_signal(signal.SIGINT)
        await asyncio.wait_for(watcher.wait(), 10)
    assert [(line["offset"], line["seq"]) for line in lines] == [(offset, s) for s in range(4)]
    assert [line["kind"] for line in lines] == ["result", "result", "result", "done"]
    assert [line["cursor"] for line in lines] == sorted(line["cursor"] for line in lines)
