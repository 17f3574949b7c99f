"""Scenarios 1 and 2: a worker dies (kill -9) or is stopped (SIGTERM) in the middle of a step."""

from collections import defaultdict

from harness.processes import JobcastProcess
from tests.faults.checker import Checker, Verdict
from tests.faults.conftest import Cluster
from tests.faults.pipelines import COUNTED_VALUES
from tests.support.waiting import eventually

JOBS = 16
CONCURRENCY = 4  # JOBCAST_WORKER_CONCURRENCY in fault_env: jobs one worker runs at once


async def _mid_step(checker: Checker, pid: int) -> set[tuple[int, int]]:
    """Once worker `pid` is running a step of a job whose previous step the ledger already
    holds: every (offset, seq) recorded by then. Empty until then."""
    finished: set[tuple[int, int]] = set()
    started: set[tuple[int, int]] = set()
    for offset, seq, _, who, event in checker.executions():
        if who == pid:
            (finished if event == "finish" else started).add((offset, seq))
    running = {(o, s - 1) for o, s in started if (o, s - 1) in finished and (o, s) not in finished}
    if not running:
        return set()
    recorded = await _recorded(checker)
    return recorded if running & recorded else set()


def _pids_per_job(checker: Checker) -> dict[int, set[int]]:
    """Which worker processes finished steps of each job."""
    found: dict[int, set[int]] = defaultdict(set)
    for offset, _, _, pid, event in checker.executions():
        if event == "finish":
            found[offset].add(pid)
    return found


async def _recorded(checker: Checker) -> set[tuple[int, int]]:
    """Every (offset, seq) the ledger holds right now."""
    return {
        (offset, reply["seq"])
        for offset, record in (await checker.records()).items()
        for reply in record["replies"]
    }


def _assert_all_done_resumed(
    cluster: Cluster, verdict: Verdict, victim: JobcastProcess, recorded: set[tuple[int, int]]
) -> None:
    verdict.assert_clean()
    assert verdict.states == {"done": JOBS}
    assert all(
        [r["value"] for r in record["replies"]] == COUNTED_VALUES
        for record in verdict.records.values()
    ), verdict.records
    # resume, don't redo: no step whose result was recorded before the fault ran again. (A step
    # that finished but whose reply was still on its way may run again: at least once.)
    assert [step for step in verdict.re_executed if step in recorded] == []
    assert len(verdict.re_executed) <= CONCURRENCY, verdict.re_executed
    # the fault really hit jobs mid-way: a job begun by the victim, with a step recorded before
    # the fault, was finished by another worker
    assert victim.proc is not None
    moved = [
        o
        for o, pids in _pids_per_job(cluster.checker).items()
        if victim.proc.pid in pids and len(pids) > 1 and any((o, s) in recorded for s in range(3))
    ]
    assert moved, "no job moved from the victim to the other worker after a recorded step"


async def test_kill_9_worker_mid_step_another_finishes_without_redoing_steps(cluster: Cluster):
    victim = cluster.start_worker("victim")
    cluster.start_worker("survivor")
    cluster.wait_consumers("jobcast.jobs", 2)
    assert victim.proc is not None
    await cluster.checker.schedule(JOBS)

    recorded = await eventually(
        lambda: _mid_step(cluster.checker, victim.proc.pid),
        timeout=20,
        what="victim in the middle of a job",
    )
    victim.kill()

    await cluster.checker.wait_until_final(timeout=60)
    _assert_all_done_resumed(cluster, await cluster.checker.verdict(), victim, recorded)


async def test_sigterm_worker_mid_job_exits_cleanly_and_hands_jobs_back(cluster: Cluster):
    stopping = cluster.start_worker("stopping")
    cluster.start_worker("staying")
    cluster.wait_consumers("jobcast.jobs", 2)
    assert stopping.proc is not None
    await cluster.checker.schedule(JOBS)

    recorded = await eventually(
        lambda: _mid_step(cluster.checker, stopping.proc.pid),
        timeout=20,
        what="worker in the middle of a job",
    )
    assert stopping.terminate(timeout=20) == 0, stopping.log()
    assert "handed back" in stopping.log()

    await cluster.checker.wait_until_final(timeout=60)
    _assert_all_done_resumed(cluster, await cluster.checker.verdict(), stopping, recorded)
