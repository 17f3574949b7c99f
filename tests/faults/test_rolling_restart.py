"""Rolling restarts during one long job: each SIGTERM hands the job back cleanly, which is not a
crash, so the job ends `done` however often its workers are restarted (issue 9, item 5)."""

import asyncio

import pytest

from harness.processes import JobcastProcess
from tests.faults.checker import FINAL
from tests.faults.conftest import Cluster
from tests.faults.pipelines import LONG_STEPS, LONG_VALUES
from tests.support.waiting import eventually

CAP = 3
"""JOBCAST_MAX_DELIVERIES here: far fewer than the restarts, so counting hand-backs as crashes
would fail the job."""
RESTARTS = 10


@pytest.fixture
def fault_env(fault_env: dict[str, str]) -> dict[str, str]:
    return {**fault_env, "JOBCAST_MAX_DELIVERIES": str(CAP), "JOBCAST_STEP_SECONDS": "0.2"}


async def test_rolling_restarts_during_a_long_job_are_not_crashes(cluster: Cluster):
    live = {w.proc.pid: w for w in (cluster.start_worker(), cluster.start_worker()) if w.proc}
    cluster.wait_consumers("jobcast.jobs", 2)
    [offset] = await cluster.checker.schedule(1, fn="long_counted")

    async def holder() -> JobcastProcess | None:
        """The live worker running a step of the job now (the last one to start a step)."""
        record = (await cluster.checker.records([offset]))[offset]
        assert record["state"] not in FINAL, f"ended before {RESTARTS} restarts: {record}"
        started = [p for o, _, _, p, event in cluster.checker.executions() if o == offset]
        return live.get(started[-1]) if started else None

    for restart in range(RESTARTS):
        victim = await eventually(holder, timeout=30, what=f"the job running (restart {restart})")
        assert victim.proc is not None
        del live[victim.proc.pid]
        # the step in flight finishes, the job goes back, the worker exits cleanly
        assert await asyncio.to_thread(victim.terminate, 30) == 0, victim.log()
        assert "handed back" in victim.log()
        replacement = cluster.start_worker(f"worker-{restart + 2}")
        assert replacement.proc is not None
        live[replacement.proc.pid] = replacement

    await cluster.checker.wait_until_final(timeout=60)
    verdict = await cluster.checker.verdict()
    verdict.assert_clean()
    record = verdict.records[offset]
    assert record["state"] == "done", record.get("error")
    assert [r["value"] for r in record["replies"]] == LONG_VALUES
    # every step ran once: each hand-back resumed right after the last step it finished
    finished = [
        s for o, s, _, _, event in cluster.checker.executions() if o == offset and event == "finish"
    ]
    assert sorted(finished) == list(range(LONG_STEPS))
    assert [t for t in verdict.dead if t.source == "jobcast.jobs"] == []
