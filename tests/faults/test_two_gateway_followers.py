"""Two gateways on one PostgreSQL ledger, followed by hundreds of SSE clients on both
(issue 9, item 3): each gateway's recorder stores its share of a job's replies, so seq n+1 is
often committed before seq n. No follower may skip a seq or see one twice, and every
`GET /messages` answer taken meanwhile must be a prefix of the final list.

It runs on a throwaway PostgreSQL cluster of its own, never the machine's shared one.
"""

import asyncio
import itertools
from collections.abc import Iterator

import httpx
import orjson
import pytest

from harness.processes import free_port
from tests.faults.checker import Checker
from tests.faults.conftest import Cluster
from tests.faults.pipelines import COUNTED_VALUES
from tests.faults.postgres_node import PostgresNode

JOBS_PER_GATEWAY = 20
FOLLOWERS_PER_JOB_AND_GATEWAY = 4  # 2 gateways x 40 jobs x 4 = 320 SSE followers


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
    # fast steps: a job's replies come in a burst, and the two recorders split each burst
    return {
        **fault_env,
        "JOBCAST_DATABASE_URL": postgres_node.url,
        "JOBCAST_STEP_SECONDS": "0.02",
        "JOBCAST_WORKER_CONCURRENCY": "16",
    }


async def follow(http: httpx.AsyncClient, offset: int) -> list[tuple[int, str]]:
    """(seq, kind) of every event of one SSE stream, until the server closes it."""
    seen: list[tuple[int, str]] = []
    async with http.stream("GET", f"/messages/{offset}/stream") as response:
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if line.startswith("data:"):
                event = orjson.loads(line.removeprefix("data:"))
                seen.append((event["seq"], event["kind"]))
    return seen


async def snapshots(
    gateways: list[httpx.AsyncClient], offsets: list[int], until: asyncio.Event
) -> list[tuple[int, list[object]]]:
    """`GET /messages` of every job on each gateway in turn, over and over, until `until`."""
    taken: list[tuple[int, list[object]]] = []
    for http in itertools.cycle(gateways):
        if until.is_set():
            return taken
        # NOTE: a connection of its own per read: reusing one the gateway is closing (an idle
        # keep-alive, a finished stream) fails with "Server disconnected" on a loaded machine
        answers = await asyncio.gather(
            *(http.get(f"/messages/{o}", headers={"Connection": "close"}) for o in offsets)
        )
        taken += [(o, a.json()) for o, a in zip(offsets, answers, strict=True)]
    return taken


async def test_followers_on_two_gateways_see_every_seq_once_in_order(cluster: Cluster):
    env_b = {**cluster.env, "JOBCAST_PORT": str(free_port())}
    gateway_b = cluster.spawn("gateway", env_b, name="gateway-b")
    gateway_b.wait_http("/ready", timeout=30)
    cluster.wait_consumers("jobcast.ledger", 2)  # both recorders share the replies
    checker_b = Checker(
        gateway_b.url,
        env_b["JOBCAST_AMQP_URL"],
        env_b["JOBCAST_DATABASE_URL"],
        cluster.checker.exec_log,
    )
    # the jobs wait in the queue until the followers are attached, then run all at once
    offsets = await cluster.checker.schedule(JOBS_PER_GATEWAY)
    offsets += await checker_b.schedule(JOBS_PER_GATEWAY)
    cluster.checker.handed_out.update(offsets)
    assert len(offsets) == 2 * JOBS_PER_GATEWAY

    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    async with (
        httpx.AsyncClient(base_url=cluster.checker.gateway_url, timeout=60, limits=limits) as a,
        httpx.AsyncClient(base_url=gateway_b.url, timeout=60, limits=limits) as b,
    ):
        following = [
            asyncio.create_task(follow(http, offset))
            for offset in offsets
            for http in (a, b)
            for _ in range(FOLLOWERS_PER_JOB_AND_GATEWAY)
        ]
        done = asyncio.Event()
        looking = asyncio.create_task(snapshots([a, b], offsets, done))
        for _ in range(2):
            cluster.start_worker()
        streams = await asyncio.wait_for(asyncio.gather(*following), 60)
        done.set()
        taken = await looking

    records = await cluster.checker.wait_until_final(timeout=30)
    final = {o: [r["value"] for r in records[o]["replies"]] for o in offsets}
    expected = [(seq, "result") for seq in range(len(COUNTED_VALUES) - 1)]
    expected.append((len(COUNTED_VALUES) - 1, "done"))
    skipped = [seen for seen in streams if seen != expected]
    assert not skipped, f"{len(skipped)} of {len(streams)} followers saw {skipped[:3]}"
    not_prefixes = [(o, s) for o, s in taken if s != final[o][: len(s)]]
    assert not not_prefixes, f"{len(not_prefixes)} of {len(taken)}: {not_prefixes[:3]}"
    assert taken
    assert all(final[o] == COUNTED_VALUES for o in offsets)

    verdict = await cluster.checker.verdict()
    verdict.assert_clean()
    assert verdict.states == {"done": 2 * JOBS_PER_GATEWAY}
