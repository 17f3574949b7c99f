"""Cancelling jobs as a service does: over HTTP, AMQP and the CLI, against a real gateway and
real workers. Which steps ran is told by the steps themselves (steering_pipelines.py)."""

import os
import subprocess
from pathlib import Path

import aio_pika
import aio_pika.abc
import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from client import JobcastClient
from contracts import UnknownOffsetError
from contracts.control import JobFinishedError
from harness.processes import JOBCAST
from tests.support.waiting import eventually

PATIENT = {"deployment": "Docker", "framework": "FastAPI", "fn": "patient"}
STUBBORN = {**PATIENT, "fn": "stubborn"}
STOPPED_AT_1 = ["step 0 ran", "step 1 stopped early", "cancelled"]
PROMPTLY = 10.0
"""Well under a patient step (30 s): a job ending within this stopped early."""


@pytest.fixture
def env(jobcast_env, tmp_path):
    return {
        **jobcast_env,
        "JOBCAST_PIPELINES": "tests.e2e.steering_pipelines",
        "STEERING_RUNS": str(tmp_path / "runs"),
        "STEERING_STEP_SECONDS": "1.5",
        "JOBCAST_WORKER_CONCURRENCY": "1",
    }


@pytest.fixture
def gateway(spawn, env):
    process = spawn("gateway", env, name="gateway")
    process.wait_http()
    return process


def start_worker(spawn, env, name="worker"):
    worker = spawn("worker", env, name=name)
    worker.wait_log("worker consuming")
    return worker


def steps_run(env, offset: int) -> list[int]:
    path = Path(env["STEERING_RUNS"])
    lines = path.read_text().splitlines() if path.exists() else []
    return [int(seq) for o, seq, _ in (line.split() for line in lines) if int(o) == offset]


async def started(env, offset: int, seq: int) -> None:
    async def probe() -> list[int]:
        return steps_run(env, offset)

    await eventually(probe, until=lambda seqs: seq in seqs, what=f"step {seq} of {offset}")


async def messages(http: httpx.AsyncClient, offset: int) -> list[object]:
    return (await http.get(f"/messages/{offset}")).json()


async def ends_with(http, offset, expected, timeout=PROMPTLY):
    return await eventually(
        lambda: messages(http, offset), until=lambda m: m == expected, timeout=timeout
    )


async def schedule(http, job) -> int:
    return (await http.post("/schedule", json=job)).json()["offset"]


async def test_a_running_step_sees_the_cancel_and_no_further_step_runs(spawn, env, gateway):
    start_worker(spawn, env)
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        offset = await schedule(http, PATIENT)
        await started(env, offset, 1)
        answer = await http.post(f"/jobs/{offset}/cancel")
        assert answer.status_code == 200
        assert answer.json() == {"offset": offset, "state": "running"}
        await ends_with(http, offset, STOPPED_AT_1)
        record = (await http.get(f"/jobs/{offset}")).json()
        assert (record["state"], record["cancel_requested"]) == ("cancelled", True)
        assert record["replies"][-1]["kind"] == "cancelled"
    assert steps_run(env, offset) == [0, 1]


async def test_a_step_that_ignores_the_cancel_ends_and_the_next_never_starts(spawn, env, gateway):
    start_worker(spawn, env)
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        offset = await schedule(http, STUBBORN)
        await started(env, offset, 1)
        assert (await http.post(f"/jobs/{offset}/cancel")).status_code == 200
        await ends_with(http, offset, ["step 0 ran", "step 1 ran", "cancelled"])
    assert steps_run(env, offset) == [0, 1]


async def test_a_queued_job_never_runs(spawn, env, gateway):
    worker = start_worker(spawn, env)  # one job at a time
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        busy = await schedule(http, PATIENT)
        await started(env, busy, 1)
        queued = await schedule(http, STUBBORN)
        answer = await http.post(f"/jobs/{queued}/cancel")
        assert answer.json() == {"offset": queued, "state": "queued"}
        record = (await http.get(f"/jobs/{queued}")).json()
        assert (record["state"], record["cancel_requested"]) == ("queued", True)

        await http.post(f"/jobs/{busy}/cancel")  # frees the worker, which takes the next job
        await ends_with(http, busy, STOPPED_AT_1)
        await ends_with(http, queued, ["cancelled"])
        assert (await http.get(f"/jobs/{queued}")).json()["state"] == "cancelled"
        worker.wait_log(f"job cancelled before it ran here offset={queued}")
    assert steps_run(env, queued) == []


async def test_a_finished_job_answers_409_and_cancelling_twice_is_harmless(spawn, env, gateway):
    start_worker(spawn, env)
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        done = await schedule(http, {**PATIENT, "fn": "default_fn"})
        finished = await ends_with(http, done, ["result1", "result2", "result3", "done"])
        answer = await http.post(f"/jobs/{done}/cancel")
        assert answer.status_code == 409
        assert "already ended" in answer.json()["detail"]
        assert await messages(http, done) == finished
        assert (await http.post("/jobs/999/cancel")).status_code == 404
        assert (await http.post("/jobs/-1/cancel")).status_code == 422

        offset = await schedule(http, PATIENT)
        await started(env, offset, 1)
        first, second = [await http.post(f"/jobs/{offset}/cancel") for _ in range(2)]
        assert (first.status_code, second.status_code) == (200, 200)
        await ends_with(http, offset, STOPPED_AT_1)
        again = await http.post(f"/jobs/{offset}/cancel")
        assert again.json() == {"offset": offset, "state": "cancelled"}
        assert await messages(http, offset) == STOPPED_AT_1


async def test_a_cancel_reaches_every_worker_at_once(spawn, env, gateway):
    workers = [start_worker(spawn, env, f"worker-{i}") for i in range(2)]
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        offsets = [await schedule(http, PATIENT) for _ in range(2)]
        for offset in offsets:  # one job each: every worker runs one at a time
            await started(env, offset, 1)
        for offset in offsets:
            await http.post(f"/jobs/{offset}/cancel")
        for offset in offsets:
            await ends_with(http, offset, STOPPED_AT_1)
    assert [w.log().count("job cancelled offset=") for w in workers] == [1, 1]


async def test_a_cancel_sent_while_the_only_worker_is_down_holds_when_the_job_comes_back(
    spawn, env, gateway
):
    worker = start_worker(spawn, env, "worker-1")
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        offset = await schedule(http, PATIENT)
        await started(env, offset, 1)
        worker.kill()  # no hand-back: RabbitMQ redelivers the job
        answer = await http.post(f"/jobs/{offset}/cancel")
        assert answer.json() == {"offset": offset, "state": "running"}

        start_worker(spawn, env, "worker-2")
        await ends_with(http, offset, ["step 0 ran", "cancelled"])
    assert steps_run(env, offset) == [0, 1]  # step 1 began once, on the worker that died


async def test_cancel_over_amqp_and_from_the_command_line(spawn, env, gateway, amqp_url):
    start_worker(spawn, env)
    async with JobcastClient(gateway.url, amqp_url=amqp_url) as jobs:
        offset = await jobs.schedule(fn="patient", deployment="Docker", framework="FastAPI")
        await started(env, offset, 1)
        assert (await jobs.cancel(offset)).state == "running"
        replies = [reply async for reply in jobs.follow(offset, timeout=PROMPTLY)]
        assert [r.value for r in replies] == STOPPED_AT_1
        assert (await jobs.cancel(offset)).state == "cancelled"
        with pytest.raises(UnknownOffsetError):
            await jobs.cancel(999)
        done = await jobs.schedule(fn="default_fn", deployment="Docker", framework="FastAPI")
        await jobs.result(done, timeout=PROMPTLY)
        with pytest.raises(JobFinishedError):
            await jobs.cancel(done)

    def cli(offset: int) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*JOBCAST, "cancel", str(offset), "--url", gateway.url],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**os.environ, "NO_COLOR": "1"},
        )

    assert (cli(offset).returncode, cli(done).returncode, cli(999).returncode) == (0, 2, 4)
    assert "already ended" in cli(done).stderr


async def test_forged_and_broken_cancels_change_nothing(spawn, env, gateway, amqp_url):
    start_worker(spawn, {**env, "JOBCAST_WORKER_CONCURRENCY": "2"})
    connection = await aio_pika.connect_robust(amqp_url)
    async with connection, httpx.AsyncClient(base_url=gateway.url) as http:
        kept, marker = [await schedule(http, PATIENT) for _ in range(2)]
        for offset in (kept, marker):
            await started(env, offset, 1)
        channel = await connection.channel()
        control = await channel.get_exchange("jobcast.control")
        forged = orjson.dumps({"offset": kept})
        await control.publish(aio_pika.Message(forged), routing_key="")
        await control.publish(
            aio_pika.Message(forged, headers={"x-jobcast-signature": "0" * 64}), routing_key=""
        )
        answers = await channel.declare_queue(exclusive=True)
        for body in (b"not json", b'{"offset": -1}', b"x" * 2000):
            await channel.default_exchange.publish(
                aio_pika.Message(body, reply_to=answers.name), routing_key="jobcast.cancel"
            )
        for _ in range(3):
            answer = orjson.loads((await _next(answers)).body)
            assert answer["error"] == "invalid_request", answer

        # the real cancel is announced after the forged ones: once it took effect, they had
        await http.post(f"/jobs/{marker}/cancel")
        await ends_with(http, marker, STOPPED_AT_1)
        record = (await http.get(f"/jobs/{kept}")).json()
        assert (record["state"], record["cancel_requested"]) == ("running", False)
        assert await messages(http, kept) == ["step 0 ran"]
        await http.post(f"/jobs/{kept}/cancel")
        await ends_with(http, kept, STOPPED_AT_1)


async def _next(queue: aio_pika.abc.AbstractQueue) -> aio_pika.abc.AbstractIncomingMessage:
    return await eventually(lambda: queue.get(fail=False), until=lambda m: m is not None)


async def _progress_questions(http: httpx.AsyncClient) -> float:
    """How many resume questions (jobcast.progress) the gateway has answered."""
    text = (await http.get("/metrics")).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if (
                sample.name == "jobcast_messages_received_total"
                and sample.labels.get("queue") == "jobcast.progress"
            ):
                return sample.value
    return 0.0


async def test_a_worker_started_after_cancels_learns_them_from_the_ledger_in_one_question(
    spawn, env, gateway
):
    # Every job is older than the worker's hearing of cancels: it may have missed any of
    # them, and asks the ledger once for them all (not once per job, as it did).
    quick = {**PATIENT, "fn": "default_fn"}
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        offsets = [await schedule(http, quick) for _ in range(9)]
        cancelled = offsets[1::3]
        for offset in cancelled:
            answer = await http.post(f"/jobs/{offset}/cancel")
            assert answer.json() == {"offset": offset, "state": "queued"}
        start_worker(spawn, env)  # it never heard those cancels: only the ledger knows
        done = ["result1", "result2", "result3", "done"]
        for offset in offsets:
            await ends_with(http, offset, ["cancelled"] if offset in cancelled else done, 30)
        assert await _progress_questions(http) == 1
