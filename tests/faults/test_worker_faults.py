"""Scenarios 1 and 2: a worker dies (kill -9) or is stopped (SIGTERM) in the middle of a step."""

from collections import defaultdict

import pytest

from tests.faults.checker import Checker
from tests.faults.conftest import Cluster
from tests.faults.pipelines import COUNTED_VALUES
from tests.support.waiting import eventually

pytestmark = pytest.mark.faults

JOBS = 16


async def _mid_step(checker: Checker, pid: int) -> bool:
    """True once worker `pid` finished a step and is running the next one of some job."""
    finished: set[tuple[int, int]] = set()
    started: set[tuple[int, int]] = set()
    for offset, seq, _, who, event in checker.executions():
        if who == pid:
            (finished if event == "finish" else started).add((offset, seq))
    return any((o, s - 1) in finished and (o, s) not in finished for o, s in started)


def _pids_per_job(checker: Checker) -> dict[int, set[int]]:
    """Which worker processes finished steps of each job."""
    found: dict[int, set[int]] = defaultdict(set)
    for offset, _, _, pid, event in checker.executions():
        if event == "finish":
            found[offset].add(pid)
    return found


def _assert_all_done_once(cluster: Cluster, verdict) -> None:  # type: ignore[no-untyped-def]
    verdict.assert_clean()
    assert verdict.states == {"done": JOBS}
    assert all([r["value"] for r in record["replies"]] == COUNTED_VALUES
               for record in verdict.records.values()), verdict.records
    # resume, don't redo: every step finished exactly once over all workers
    assert verdict.re_executed == []
    finished = [e for e in cluster.checker.executions() if e[4] == "finish"]
    assert len(finished) == JOBS * 3


async def test_kill_9_worker_mid_step_another_finishes_without_redoing_steps(cluster: Cluster):
    victim = cluster.start_worker("victim")
    cluster.start_worker("survivor")
    cluster.wait_consumers("jobcast.jobs", 2)
    assert victim.proc is not None
    await cluster.checker.schedule(JOBS)

    await eventually(lambda: _mid_step(cluster.checker, victim.proc.pid),
                     timeout=20, what="victim in the middle of a job")
    victim.kill()

    await cluster.checker.wait_until_final(timeout=60)
    verdict = await cluster.checker.verdict()
    _assert_all_done_once(cluster, verdict)
    # the scenario really happened: some job was begun by the victim and finished by another
    handed_over = [o for o, pids in _pids_per_job(cluster.checker).items()
                   if victim.proc.pid in pids and len(pids) > 1]
    assert handed_over, "no job moved from the killed worker to the survivor"


async def test_sigterm_worker_mid_job_exits_cleanly_and_hands_jobs_back(cluster: Cluster):
    stopping = cluster.start_worker("stopping")
    cluster.start_worker("staying")
    cluster.wait_consumers("jobcast.jobs", 2)
    assert stopping.proc is not None
    await cluster.checker.schedule(JOBS)

    await eventually(lambda: _mid_step(cluster.checker, stopping.proc.pid),
                     timeout=20, what="worker in the middle of a job")
    assert stopping.terminate(timeout=20) == 0, stopping.log()

    await cluster.checker.wait_until_final(timeout=60)
    verdict = await cluster.checker.verdict()
    _assert_all_done_once(cluster, verdict)
    handed_back = [o for o, pids in _pids_per_job(cluster.checker).items()
                   if stopping.proc.pid in pids and len(pids) > 1]
    assert handed_back, "the stopping worker handed no job back mid-way"
