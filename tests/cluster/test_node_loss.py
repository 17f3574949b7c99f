"""jobcast on a three-node RabbitMQ cluster under node loss (issue 14).

Two gateways on one PostgreSQL ledger and three workers, each process starting on another node
of one JOBCAST_AMQP_URL; jobs are submitted to both gateways over HTTP and over AMQP while
1. the node leading jobcast.jobs and jobcast.ledger is killed with kill -9, then restarted;
2. the node gateway B is connected to is stopped, and B moves to another node;
3. every node is restarted, one after the other.
Each time the Jepsen-style checker (tests/faults/checker.py) finds nothing lost, duplicated or
unexpected; every offset is unique; every job reads the same from both gateways; a follower of
the feed on each gateway saw every reply live, each job's in order. Run with -s to see what the
fault cost (time to recover, latencies); README, Running on a cluster, has the figures.
"""

import asyncio
import statistics
import time
from collections import defaultdict
from datetime import datetime
from typing import Any

import pytest

from contracts.topology import JOBS_QUEUE, LEDGER_QUEUE
from harness.rabbit_cluster import RabbitCluster
from tests.cluster.conftest import Deployment
from tests.faults.pipelines import COUNTED_VALUES
from tests.support.waiting import eventually

pytestmark = pytest.mark.timeout(420)

FINAL_SEQ = len(COUNTED_VALUES) - 1


async def test_killing_the_leader_of_the_queues_loses_nothing(deployment: Deployment):
    cluster = deployment.cluster
    leaders = cluster.leaders(deployment.vhost)
    leader = leaders[JOBS_QUEUE.name]
    assert leaders[LEDGER_QUEUE.name] == leader, leaders  # both declared by gateway A
    assert cluster.members(deployment.vhost, JOBS_QUEUE.name).count("@") == 3  # quorum size 3
    victim = cluster.node_named(leader)
    figures: dict[str, float] = {}

    async def fault() -> None:
        await warm_up(deployment)
        figures["fault_at"] = time.time()
        started = time.monotonic()
        await asyncio.to_thread(victim.kill)
        new = await eventually(
            lambda: asyncio.to_thread(other_leaders, cluster, deployment.vhost, leader),
            timeout=60,
            every=0.2,
            what="new leaders for jobcast.jobs and jobcast.ledger",
        )
        figures["new_leaders_s"] = time.monotonic() - started
        await asyncio.sleep(3)  # submissions go on with the node down
        await asyncio.to_thread(victim.start)
        figures["restarted_s"] = time.monotonic() - started
        figures["fault_end"] = time.time()
        print(f"killed {leader}; new leaders {new}")

    await run_fault(deployment, fault(), figures, "kill -9 of the queues' leader")


async def test_the_node_of_a_gateway_stopped_the_gateway_moves_to_another(
    deployment: Deployment,
):
    cluster = deployment.cluster
    node = cluster.nodes[1]  # gateway B's first node (and worker 1's)
    gateway_b = deployment.gateways[1]
    figures: dict[str, float] = {}
    assert connections_on(cluster, deployment.vhost, node.name) > 0

    async def fault() -> None:
        await warm_up(deployment)
        figures["fault_at"] = time.time()
        started = time.monotonic()
        await asyncio.to_thread(node.stop)
        # B is on another node: ready, its recorder and worker 1 consuming again, all while
        # node 1 is down
        await asyncio.to_thread(gateway_b.wait_http, "/ready", 60)
        await asyncio.to_thread(deployment.wait_consumers, LEDGER_QUEUE.name, 2)
        await asyncio.to_thread(deployment.wait_consumers, JOBS_QUEUE.name, 3)
        figures["consumers_back_s"] = time.monotonic() - started
        sub = await deployment.submit("http", 1)
        figures["b_accepts_s"] = sub.accepted - started
        await asyncio.sleep(2)
        await asyncio.to_thread(node.start)
        figures["restarted_s"] = time.monotonic() - started
        figures["fault_end"] = time.time()

    await run_fault(deployment, fault(), figures, "stop of gateway B's node")


async def test_a_rolling_restart_of_all_three_nodes_loses_nothing(deployment: Deployment):
    cluster = deployment.cluster
    figures: dict[str, float] = {}

    async def fault() -> None:
        await warm_up(deployment)
        figures["fault_at"] = time.time()
        started = time.monotonic()
        for node in cluster.nodes:
            # NOTE: as an operator would: never take a node whose loss costs a queue its
            # majority (a replica still catching up after the last restart)
            await asyncio.to_thread(cluster.wait_quorum_safe, node)
            await asyncio.to_thread(node.stop)
            await asyncio.to_thread(node.start)
        figures["restarted_s"] = time.monotonic() - started
        figures["fault_end"] = time.time()

    await run_fault(deployment, fault(), figures, "rolling restart")


async def warm_up(deployment: Deployment) -> None:
    """A few jobs before the fault, so that some are mid-pipeline when it comes."""
    await asyncio.gather(*(deployment.submit(via, g) for via in ("http", "amqp") for g in (0, 1)))
    await asyncio.sleep(0.5)


async def run_fault(
    deployment: Deployment, fault: Any, figures: dict[str, float], label: str
) -> None:
    """Submit jobs while `fault` runs, then judge the run and print what it cost."""
    running = asyncio.ensure_future(fault)
    await deployment.submit_during(running)
    await judge(deployment, figures, label)


async def judge(deployment: Deployment, figures: dict[str, float], label: str) -> None:
    checker = deployment.checker()
    subs = deployment.submissions
    offsets = [s.offset for s in subs]
    assert len(set(offsets)) == len(offsets), "an offset was handed out twice"
    await checker.wait_until_final(timeout=120)
    verdict = await checker.verdict()
    verdict.assert_clean()
    assert verdict.states == {"done": len(subs)}, verdict.states

    # every job reads the same from both gateways
    a, b = deployment.gateways
    for offset in offsets:
        on_a = (await deployment.http.get(f"{a.url}/jobs/{offset}")).json()
        on_b = (await deployment.http.get(f"{b.url}/jobs/{offset}")).json()
        assert on_a == on_b, offset
        assert [r["value"] for r in on_a["replies"]] == COUNTED_VALUES

    # each gateway's follower saw every reply live: once, each job's in seq order, the
    # feed's cursors rising
    produced = {
        (o, r["seq"]): datetime.fromisoformat(r["produced_at"]).timestamp()
        for o, record in verdict.records.items()
        for r in record["replies"]
    }
    lags: list[float] = []
    for follower in deployment.followers:
        task = follower.task
        assert task is not None
        if task.done():  # its stream ended: say why, not "missing"
            raise AssertionError(f"the follower on {follower.gateway.name} stopped") from (
                task.exception()
            )
        await eventually(
            lambda f=follower: asyncio.sleep(0, result=set(offsets) - finals(f.seen)),
            until=lambda missing: not missing,
            timeout=30,
            what=f"the follower on {follower.gateway.name} saw every job end (missing: last)",
        )
        cursors = [cursor for cursor, *_ in follower.seen]
        assert cursors == sorted(set(cursors)), "cursors not rising, or one twice"
        per_job: dict[int, list[int]] = defaultdict(list)
        for _, offset, seq, _, received in follower.seen:
            per_job[offset].append(seq)
            if figures["fault_at"] <= produced[(offset, seq)] <= figures["fault_end"]:
                lags.append(received - produced[(offset, seq)])
        wrong = {o: s for o, s in per_job.items() if s != list(range(FINAL_SEQ + 1))}
        assert not wrong, f"{follower.gateway.name}: {wrong}"
        assert set(per_job) == set(offsets)

    report(label, figures, subs, lags, verdict.topic_copies)


def finals(seen: list[tuple[int, int, int, str, float]]) -> set[int]:
    return {offset for _, offset, _, kind, _ in seen if kind == "done"}


def report(label: str, figures: dict[str, float], subs: list[Any], lags: list[float], copies: int):
    to_wall = time.time() - time.monotonic()
    during = [
        s.accepted - s.sent
        for s in subs
        if figures["fault_at"] <= s.sent + to_wall <= figures["fault_end"]
    ]
    retried = sum(1 for s in subs if s.tries > 1)
    shown = {k: round(v, 2) for k, v in figures.items() if k.endswith("_s")}
    print(
        f"\n[cluster] {label}: {len(subs)} jobs ({retried} submissions retried), {shown}; "
        f"submit->offset during the fault: p50 {_ms(statistics.median(during) if during else 0)}, "
        f"max {_ms(max(during, default=0))}; reply produced->seen by a follower during the "
        f"fault: p50 {_ms(statistics.median(lags) if lags else 0)}, "
        f"p99 {_ms(_p99(lags))}, max {_ms(max(lags, default=0))} ({len(lags)} replies); "
        f"replies seen twice on the topic: {copies}"
    )


def _p99(values: list[float]) -> float:
    return sorted(values)[int(len(values) * 0.99)] if values else 0.0


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def other_leaders(cluster: RabbitCluster, vhost: str, old: str) -> dict[str, str] | None:
    """The leaders of jobcast.jobs and jobcast.ledger once neither is `old` (None before)."""
    try:
        leaders = cluster.leaders(vhost)
    except RuntimeError:
        return None
    wanted = {q: leaders.get(q, old) for q in (JOBS_QUEUE.name, LEDGER_QUEUE.name)}
    return None if old in wanted.values() else wanted


def connections_on(cluster: RabbitCluster, vhost: str, node: str) -> int:
    """Client connections of `vhost` on `node` (rabbitmqctl prints a pid with its node)."""
    out = cluster.ctl("list_connections", "-p", vhost, "pid", "--no-table-headers", "-q")
    return sum(1 for line in out.splitlines() if node.split("@")[0] in line)
