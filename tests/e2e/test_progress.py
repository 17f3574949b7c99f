"""Progress inside a step, end to end against `jobcast serve`: a step reporting 100 ticks is
followed over SSE, the client's follow() (HTTP and AMQP) and `jobcast watch`, in order and
with the last tick, while the results, GET /messages and the cost of quiet jobs stay as they
were."""

import os
import subprocess

import aio_pika
import httpx
import orjson
import pytest

from client import JobcastClient
from contracts import Reply, ReplyKind
from contracts.topology import REPLIES_EXCHANGE
from harness.processes import JOBCAST, JobcastProcess
from tests.e2e.progress_pipelines import TICKS
from tests.e2e.sse import read_events

HUNDRED = {"deployment": "Docker", "framework": "FastAPI", "fn": "hundred"}
QUIET = {"deployment": "Docker", "framework": "FastAPI", "fn": "quiet"}


@pytest.fixture
def server(spawn, jobcast_env) -> JobcastProcess:
    env = {**jobcast_env, "JOBCAST_PIPELINES": "tests.e2e.progress_pipelines"}
    process = spawn("serve", env, name="serve")
    process.wait_http()
    return process


async def schedule(http: httpx.AsyncClient, job: dict[str, str]) -> int:
    answer = await http.post("/schedule", json=job)
    assert answer.status_code == 200, answer.text
    return int(answer.json()["offset"])


def assert_ticks_in_order_with_the_last(replies: list[Reply]) -> None:
    """Progress, then step 0's result: ticks only of step 0, rising, the 100th among them."""
    kinds = [r.kind for r in replies]
    first_result = kinds.index(ReplyKind.RESULT)
    ticks = replies[:first_result]
    assert ticks, "no progress seen"
    assert all(r.kind is ReplyKind.PROGRESS and r.seq == 0 for r in ticks)
    currents = [r.value["current"] for r in ticks]  # type: ignore[call-overload,index]
    assert currents == sorted(set(currents))  # in order, each once
    assert currents[-1] == TICKS  # rate limiting may skip some, never the last
    assert ticks[-1].value == {"current": 100, "total": 100, "message": "file 100 of 100"}
    rest = replies[first_result:]
    assert [(r.seq, r.kind, r.value) for r in rest] == [
        (0, ReplyKind.RESULT, "resized"),
        (1, ReplyKind.RESULT, "published"),
        (2, ReplyKind.DONE, "done"),
    ]


async def test_sse_shows_the_ticks_in_order_then_the_results_and_progress_has_no_id(server):
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        offset = await schedule(http, HUNDRED)
        events = await read_events(http, f"/messages/{offset}/stream")
        replies = [Reply.model_validate(e.data) for e in events]
        assert_ticks_in_order_with_the_last(replies)
        assert [e.event for e in events] == [r.kind.value for r in replies]
        # a tick carries no id: Last-Event-ID always names the last result seen
        assert {e.id for e in events if e.event == "progress"} == {""}
        assert [e.id for e in events if e.event != "progress"] == ["0", "1", "2"]

        # GET /messages: the results only, as before; GET /jobs: the latest tick
        assert (await http.get(f"/messages/{offset}")).json() == ["resized", "published", "done"]
        job = (await http.get(f"/jobs/{offset}")).json()
        assert [r["kind"] for r in job["replies"]] == ["result", "result", "done"]
        progress = job["progress"]
        assert (progress["seq"], progress["current"], progress["total"]) == (0, 100, 100)
        assert progress["message"] == "file 100 of 100"


@pytest.mark.parametrize("transport", ["http", "amqp"])
async def test_follow_yields_the_ticks_in_order_and_result_ignores_them(
    server, jobcast_env, transport
):
    amqp_url = jobcast_env["JOBCAST_AMQP_URL"] if transport == "amqp" else None
    async with JobcastClient(server.url, amqp_url=amqp_url) as client:
        offset = await client.schedule(**HUNDRED)
        replies = [reply async for reply in client.follow(offset, timeout=60)]
        assert_ticks_in_order_with_the_last(replies)

        record = await client.result(offset, timeout=60)
        assert [r.kind for r in record.replies] == [
            ReplyKind.RESULT,
            ReplyKind.RESULT,
            ReplyKind.DONE,
        ]
        assert await client.messages(offset) == ["resized", "published", "done"]


def test_watch_json_prints_the_ticks_and_exits_zero(server):
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    submit = [*JOBCAST, "submit", "--fn", "hundred", "--json", "--url", server.url]
    offset = orjson.loads(
        subprocess.run(
            submit, capture_output=True, text=True, check=True, env=env, timeout=60
        ).stdout
    )["offset"]
    watch = [*JOBCAST, "watch", str(offset), "--json", "--url", server.url]
    run = subprocess.run(watch, capture_output=True, text=True, check=False, env=env, timeout=60)
    assert run.returncode == 0, run.stderr
    replies = [Reply.model_validate_json(line) for line in run.stdout.splitlines()]
    assert_ticks_in_order_with_the_last(replies)


async def test_a_job_that_reports_nothing_sends_no_more_messages_than_before(server, jobcast_env):
    async with await aio_pika.connect(jobcast_env["JOBCAST_AMQP_URL"]) as connection:
        channel = await connection.channel()
        tap = await channel.declare_queue(exclusive=True)
        await tap.bind(REPLIES_EXCHANGE.name, routing_key="reply.#")
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            offset = await schedule(http, QUIET)
            await read_events(http, f"/messages/{offset}/stream")  # until done
            job = (await http.get(f"/jobs/{offset}")).json()
        assert job["progress"] is None
        seen: list[Reply] = []
        while (message := await tap.get(fail=False, no_ack=True, timeout=5)) is not None:
            seen.append(Reply.model_validate_json(message.body))
        # three results and the done: not one message more on the reply topic
        assert [(r.offset, r.seq, r.kind) for r in seen] == [
            (offset, 0, ReplyKind.RESULT),
            (offset, 1, ReplyKind.RESULT),
            (offset, 2, ReplyKind.RESULT),
            (offset, 3, ReplyKind.DONE),
        ]
