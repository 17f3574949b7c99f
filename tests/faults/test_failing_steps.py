"""Scenarios 7 and 8: steps that raise (always, or twice then not), and an unknown `fn`."""

import itertools
from collections import defaultdict
from datetime import datetime

from contracts.topology import JOBS_QUEUE
from tests.faults.conftest import Cluster

ATTEMPTS = 3  # JOBCAST_STEP_ATTEMPTS in fault_env
INITIAL_BACKOFF = 0.2  # JOBCAST_RETRY_INITIAL_SECONDS


def _attempt_times(cluster: Cluster) -> dict[int, list[float]]:
    times: dict[int, list[float]] = defaultdict(list)
    for line in cluster.checker.exec_log.read_text().splitlines():
        offset, _, _, _, event, at = line.split()
        if event in ("raise", "finish"):
            times[int(offset)].append(float(at))
    return times


async def test_failing_steps_retry_with_backoff_then_fail_or_recover(cluster: Cluster):
    cluster.start_worker()
    cluster.wait_consumers("jobcast.jobs", 1)
    failing = await cluster.checker.schedule(2, fn="always_fails")
    flaky = await cluster.checker.schedule(2, fn="flaky")

    await cluster.checker.wait_until_final(timeout=60)
    verdict = await cluster.checker.verdict()
    verdict.assert_clean()
    assert verdict.states == {"failed": 2, "done": 2}

    attempts = _attempt_times(cluster)
    for offset in failing:
        record = verdict.records[offset]
        assert record["state"] == "failed"
        assert "disk on fire" in record["error"]
        assert "RuntimeError" in record["error"]
        # the error reply ends the list GET /messages shows, and went out on reply.<offset>
        assert record["replies"][-1]["kind"] == "error"
        assert record["replies"][-1]["value"] == record["error"]
        assert any(r["offset"] == offset and r["kind"] == "error" for r in verdict.topic)
        # tried exactly ATTEMPTS times, waiting longer each time (exponential backoff)
        times = attempts[offset]
        assert len(times) == ATTEMPTS, times
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert gaps[0] >= INITIAL_BACKOFF * 0.9, gaps
        assert gaps[1] >= 2 * INITIAL_BACKOFF * 0.9, gaps
    for offset in flaky:
        record = verdict.records[offset]
        assert [r["value"] for r in record["replies"]] == ["worked on attempt 3", "done"]
        assert len(attempts[offset]) == ATTEMPTS

    # the failed jobs went to jobcast.dead with the reason beside the broker's own headers
    dead = [t for t in verdict.dead if t.source == JOBS_QUEUE.name]
    assert len(dead) == len(failing)
    assert all("disk on fire" in (t.reason or "") for t in dead)


async def test_unknown_fn_fails_at_once_with_a_reason_naming_it(cluster: Cluster):
    cluster.start_worker()
    cluster.wait_consumers("jobcast.jobs", 1)
    unknown = await cluster.checker.schedule(2, fn="no_such_pipeline")

    await cluster.checker.wait_until_final(timeout=30)
    verdict = await cluster.checker.verdict()
    verdict.assert_clean()
    assert verdict.states == {"failed": 2}
    for offset in unknown:
        record = verdict.records[offset]
        assert "no_such_pipeline" in record["error"], record
        assert [r["kind"] for r in record["replies"]] == ["error"]
        took = (
            datetime.fromisoformat(record["updated_at"])
            - datetime.fromisoformat(record["created_at"])
        ).total_seconds()
        assert took < INITIAL_BACKOFF * 5, f"failed after {took}s: retried?"
    dead = [t for t in verdict.dead if t.source == JOBS_QUEUE.name]
    assert len(dead) == 2
    assert all("no_such_pipeline" in (t.reason or "") for t in dead)
