"""Scenario 5: the gateway is stopped (SIGTERM) and killed (kill -9) while replies flow."""

from tests.faults.checker import Checker
from tests.faults.conftest import Cluster
from tests.support.waiting import eventually

JOBS = 12


async def _finished_steps(checker: Checker) -> int:
    return sum(event == "finish" for *_, event in checker.executions())


async def test_gateway_killed_while_replies_flow_results_complete_after_restart(cluster: Cluster):
    for _ in range(2):
        cluster.start_worker()
    cluster.wait_consumers("jobcast.jobs", 2)
    await cluster.checker.schedule(JOBS)
    assert cluster.gateway is not None

    # a clean stop drains: exit 0, and the ledger keeps what it acked
    await eventually(
        lambda: _finished_steps(cluster.checker),
        until=lambda n: n >= 2,
        timeout=20,
        what="replies flowing",
    )
    assert cluster.gateway.terminate(timeout=30) == 0, cluster.gateway.log()
    cluster.start_gateway("gateway-after-sigterm")

    # a crash loses nothing either: unacked replies wait in jobcast.ledger
    await cluster.checker.schedule(JOBS)
    finished = await _finished_steps(cluster.checker)
    await eventually(
        lambda: _finished_steps(cluster.checker),
        until=lambda n: n >= finished + 2,
        timeout=20,
        what="more replies flowing",
    )
    cluster.gateway.kill()
    # replies keep coming while no gateway runs; they wait in the durable queue
    down_at = await _finished_steps(cluster.checker)
    await eventually(
        lambda: _finished_steps(cluster.checker),
        until=lambda n: n >= down_at + 4,
        timeout=20,
        what="steps finishing while the gateway is down",
    )
    cluster.start_gateway("gateway-after-kill")

    await cluster.checker.wait_until_final(timeout=60)
    verdict = await cluster.checker.verdict()
    verdict.assert_clean()
    assert verdict.states == {"done": 2 * JOBS}
