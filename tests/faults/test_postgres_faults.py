"""Scenario 10: the PostgreSQL ledger goes away while replies arrive, then comes back.

It runs on a throwaway PostgreSQL cluster of its own, never the machine's shared one.
"""

from collections.abc import Iterator

import httpx
import pytest

from tests.faults.checker import Checker
from tests.faults.conftest import Cluster
from tests.faults.postgres_node import PostgresNode
from tests.support.waiting import eventually

JOBS = 12


@pytest.fixture
def postgres_node() -> Iterator[PostgresNode]:
    node = PostgresNode()
    try:
        node.start()
        yield node
    finally:
        node.destroy()


@pytest.fixture
def fault_env(fault_env: dict[str, str], postgres_node: PostgresNode) -> dict[str, str]:
    return {**fault_env, "JOBCAST_DATABASE_URL": postgres_node.url}


async def _finished_steps(checker: Checker) -> int:
    return sum(event == "finish" for *_, event in checker.executions())


async def test_postgres_down_while_replies_arrive_nothing_lost_ready_red(
    cluster: Cluster, postgres_node: PostgresNode
):
    for _ in range(2):
        cluster.start_worker()
    cluster.wait_consumers("jobcast.jobs", 2)
    offsets = await cluster.checker.schedule(JOBS)
    await eventually(
        lambda: _finished_steps(cluster.checker),
        until=lambda n: n >= 2,
        timeout=20,
        what="replies flowing",
    )

    postgres_node.stop()
    async with httpx.AsyncClient(base_url=cluster.checker.gateway_url, timeout=15) as http:
        ready = await eventually(
            lambda: http.get("/ready"),
            until=lambda r: r.status_code == 503,
            timeout=15,
            what="/ready red while PostgreSQL is down",
        )
        assert ready.json()["ledger"] is False
        # reads and new jobs are refused with 503, never a 500
        assert (await http.get(f"/messages/{offsets[0]}")).status_code == 503
        assert (
            await http.post(
                "/schedule", json={"deployment": "d", "framework": "f", "fn": "counted"}
            )
        ).status_code == 503
        # workers go on; their replies wait, unacked, in jobcast.ledger
        down_at = await _finished_steps(cluster.checker)
        await eventually(
            lambda: _finished_steps(cluster.checker),
            until=lambda n: n >= down_at + 4,
            timeout=20,
            what="steps finishing while PostgreSQL is down",
        )
        postgres_node.start()
        await eventually(
            lambda: http.get("/ready"),
            until=lambda r: r.status_code == 200,
            timeout=30,
            what="/ready green again",
        )

    await cluster.checker.wait_until_final(timeout=60)
    verdict = await cluster.checker.verdict()
    verdict.assert_clean()
    assert verdict.states == {"done": JOBS}
