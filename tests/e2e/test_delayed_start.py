"""Delayed start as a service uses it: a job scheduled for later gets its offset at once,
waits `scheduled`, and reaches a worker within a second of its time, across a gateway
restart, exactly once with two gateways on PostgreSQL, or never if cancelled meanwhile."""

from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from contracts.messages import utcnow
from harness.processes import free_port
from tests.e2e.test_cancel import ends_with, steps_run
from tests.support.waiting import eventually

JOB = {"deployment": "Docker", "framework": "FastAPI", "fn": "stubborn"}
DONE = ["step 0 ran", "step 1 ran", "step 2 ran", "done"]
ON_TIME = 1.0
"""A delayed job's first step starts at most this long after its time."""


@pytest.fixture
def env(jobcast_env, tmp_path):
    return {
        **jobcast_env,
        "JOBCAST_PIPELINES": "tests.e2e.steering_pipelines",
        "STEERING_RUNS": str(tmp_path / "runs"),
        "STEERING_STEP_SECONDS": "0.05",
    }


def started_at(env, offset: int) -> float:
    path = env["STEERING_RUNS"]
    for line in Path(path).read_text().splitlines():
        o, seq, at = line.split()
        if int(o) == offset and seq == "0":
            return float(at)
    raise AssertionError(f"job {offset} never started")


async def first_step(env, offset: int, timeout: float = 15.0) -> float:
    async def probe() -> list[int]:
        return steps_run(env, offset)

    await eventually(probe, until=bool, timeout=timeout, what=f"job {offset} started")
    return started_at(env, offset)


def when(record: dict[str, object]) -> float:
    return datetime.fromisoformat(str(record["due_at"])).timestamp()


@pytest.fixture
def cluster(spawn, env):
    gateway = spawn("gateway", env, name="gateway")
    gateway.wait_http()
    spawn("worker", env, name="worker").wait_log("worker consuming")
    return gateway


async def test_a_delayed_job_waits_scheduled_and_starts_within_a_second_of_its_time(cluster, env):
    async with httpx.AsyncClient(base_url=cluster.url) as http:
        answer = await http.post("/schedule", json={**JOB, "delay_seconds": 2})
        assert answer.status_code == 200
        offset = answer.json()["offset"]
        record = (await http.get(f"/jobs/{offset}")).json()
        assert (record["state"], record["replies"]) == ("scheduled", [])
        assert record["request"]["delay_seconds"] == 2
        due = when(record)

        at = (utcnow() + timedelta(seconds=2)).isoformat()
        other = (await http.post("/schedule", json={**JOB, "run_at": at})).json()["offset"]
        other_due = when((await http.get(f"/jobs/{other}")).json())
        assert other_due == datetime.fromisoformat(at).timestamp()

        for job, due_at in ((offset, due), (other, other_due)):
            assert 0 <= await first_step(env, job) - due_at <= ON_TIME
            await ends_with(http, job, DONE)
            assert (await http.get(f"/jobs/{job}")).json()["due_at"] is None


async def test_a_delay_out_of_bounds_is_refused(cluster):
    past = (utcnow() - timedelta(minutes=5)).isoformat()
    far = (utcnow() + timedelta(days=31)).isoformat()
    async with httpx.AsyncClient(base_url=cluster.url) as http:
        for fields in (
            {"run_at": past},
            {"run_at": far},
            {"delay_seconds": 31 * 24 * 3600},
            {"delay_seconds": -1},
            {"run_at": far, "delay_seconds": 1},
            {"run_at": "2030-01-01T00:00:00"},  # no timezone
        ):
            answer = await http.post("/schedule", json={**JOB, **fields})
            assert answer.status_code == 422, (fields, answer.text)
        # nothing was handed out for them
        assert (await http.post("/schedule", json=JOB)).json()["offset"] == 0


async def test_a_delayed_job_cancelled_while_it_waits_never_runs(cluster, env):
    async with httpx.AsyncClient(base_url=cluster.url) as http:
        cancelled = (await http.post("/schedule", json={**JOB, "delay_seconds": 1})).json()
        marker = (await http.post("/schedule", json={**JOB, "delay_seconds": 1.5})).json()
        answer = await http.post(f"/jobs/{cancelled['offset']}/cancel")
        assert answer.json() == {"offset": cancelled["offset"], "state": "cancelled"}
        assert (await http.get(f"/messages/{cancelled['offset']}")).json() == ["cancelled"]
        await first_step(env, marker["offset"])  # due after it: it would have run by now
        await ends_with(http, marker["offset"], DONE)
    assert steps_run(env, cancelled["offset"]) == []


async def test_a_delayed_job_survives_a_gateway_restart(spawn, env):
    gateway = spawn("gateway", env, name="gateway-1")
    gateway.wait_http()
    spawn("worker", env, name="worker").wait_log("worker consuming")
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        offset = (await http.post("/schedule", json={**JOB, "delay_seconds": 3})).json()["offset"]
        due = when((await http.get(f"/jobs/{offset}")).json())
    gateway.terminate()
    again = spawn("gateway", env, name="gateway-2")
    again.wait_http()
    ready = utcnow().timestamp()
    async with httpx.AsyncClient(base_url=again.url) as http:
        assert 0 <= await first_step(env, offset) - max(due, ready) <= ON_TIME
        await ends_with(http, offset, DONE)
    assert steps_run(env, offset) == [0, 1, 2]


async def test_two_gateways_on_postgresql_release_each_delayed_job_exactly_once(
    spawn, env, postgres_url
):
    shared = {**env, "JOBCAST_DATABASE_URL": postgres_url, "JOBCAST_WORKER_CONCURRENCY": "64"}
    gateways = [
        spawn("gateway", {**shared, "JOBCAST_PORT": str(free_port())}, name=f"gateway-{i}")
        for i in range(2)
    ]
    for gateway in gateways:
        gateway.wait_http()
    spawn("worker", shared, name="worker").wait_log("worker consuming")
    offsets = []
    for i in range(40):
        async with httpx.AsyncClient(base_url=gateways[i % 2].url) as http:
            answer = await http.post("/schedule", json={**JOB, "delay_seconds": 1})
            offsets.append(answer.json()["offset"])
    async with httpx.AsyncClient(base_url=gateways[0].url) as http:
        for offset in offsets:
            await ends_with(http, offset, DONE, timeout=30)
    for offset in offsets:
        assert steps_run(env, offset) == [0, 1, 2], offset
