"""A job that kills its worker every time: jobcast's own delivery cap fails it with a reason
before the broker's delivery limit would drop it silently."""

import time
from collections.abc import Awaitable, Callable

import pytest

from contracts.topology import JOBS_QUEUE
from harness.processes import JobcastProcess
from tests.faults.checker import FINAL
from tests.faults.conftest import Cluster
from tests.support.waiting import eventually

CAP = 2


@pytest.fixture
def fault_env(fault_env: dict[str, str]) -> dict[str, str]:
    return {**fault_env, "JOBCAST_MAX_DELIVERIES": str(CAP)}


async def _ended(worker: JobcastProcess, state: Callable[[], Awaitable[str]]) -> bool:
    assert worker.proc is not None
    return worker.proc.poll() is not None or await state() in FINAL


async def test_a_job_that_kills_its_worker_every_time_fails_with_a_reason(cluster: Cluster):
    [offset] = await cluster.checker.schedule(1, fn="crashes")

    async def state() -> str:
        return str((await cluster.checker.records([offset]))[offset]["state"])

    crashed = 0
    deadline = time.monotonic() + 90
    while await state() not in FINAL:
        assert time.monotonic() < deadline, f"still {await state()} after {crashed} crashes"
        worker = cluster.start_worker(f"worker-{crashed}")
        assert worker.proc is not None

        await eventually(
            lambda w=worker: _ended(w, state),
            timeout=30,  # type: ignore[misc]
            what="the worker crashed or the job ended",
        )
        if worker.proc.poll() is not None:
            assert worker.proc.returncode == 17, worker.log()
            crashed += 1

    verdict = await cluster.checker.verdict()
    verdict.assert_clean()
    assert crashed == CAP
    record = verdict.records[offset]
    assert record["state"] == "failed"
    assert f"gave up after {CAP} deliveries" in record["error"]
    # resumed each time: the first step ran once, the deadly one once per delivery
    steps = [(seq, event) for o, seq, _, _, event in cluster.checker.executions() if o == offset]
    assert steps.count((0, "finish")) == 1
    assert steps.count((1, "start")) == CAP
    assert [r["kind"] for r in record["replies"]] == ["result", "error"]
    dead = [t for t in verdict.dead if t.source == JOBS_QUEUE.name]
    assert len(dead) == 1
    assert "gave up" in (dead[0].reason or "")
