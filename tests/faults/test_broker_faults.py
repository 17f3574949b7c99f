"""Scenarios 3 and 4: the broker restarts, or drops every connection, with jobs in flight."""

import time

import aio_pika
import httpx
import orjson

from contracts.topology import SCHEDULE_QUEUE
from tests.faults.checker import Checker
from tests.faults.conftest import Cluster
from tests.support.waiting import eventually

JOBS = 12
QUEUES_CONSUMED = {
    "jobcast.jobs": 2,
    "jobcast.ledger": 1,
    "jobcast.schedule": 1,
    "jobcast.progress": 1,
    "jobcast.handed-back": 1,
}


async def _some_step_finished(checker: Checker) -> bool:
    return any(event == "finish" for *_, event in checker.executions())


async def _messages(http: httpx.AsyncClient, offset: int) -> list[object]:
    response = await http.get(f"/messages/{offset}")
    assert response.status_code == 200, response.text
    return list(response.json())


async def _ready(http: httpx.AsyncClient) -> int:
    return (await http.get("/ready")).status_code


async def _schedule_over_amqp(cluster: Cluster) -> int:
    """Submit one job on jobcast.schedule with reply_to (RPC) and return its offset."""
    connection = await aio_pika.connect(cluster.env["JOBCAST_AMQP_URL"])
    async with connection:
        channel = await connection.channel()
        callback = await channel.declare_queue(exclusive=True)
        request = {"deployment": "faults", "framework": "amqp", "fn": "counted"}
        await channel.default_exchange.publish(
            aio_pika.Message(
                orjson.dumps(request),
                reply_to=callback.name,
                correlation_id="rpc-1",
                content_type="application/json",
            ),
            routing_key=SCHEDULE_QUEUE.name,
        )
        async with callback.iterator(timeout=20) as answers:
            async for answer in answers:
                offset = int(orjson.loads(answer.body)["offset"])
                cluster.checker.handed_out.add(offset)
                return offset
    raise AssertionError("no answer on the reply queue")


async def _assert_everything_consumes_again(cluster: Cluster) -> None:
    """The broker counts every consumer again, and new work over HTTP and AMQP completes."""
    for queue, count in QUEUES_CONSUMED.items():
        cluster.wait_consumers(queue, count, timeout=30)
    after = await cluster.checker.schedule(4)
    assert len(after) == 4, cluster.checker.refused
    await _schedule_over_amqp(cluster)


async def test_broker_restart_with_jobs_in_flight_everything_recovers(cluster: Cluster):
    for _ in range(2):
        cluster.start_worker()
    cluster.wait_consumers("jobcast.jobs", 2)
    await cluster.checker.schedule(JOBS)
    await eventually(
        lambda: _some_step_finished(cluster.checker), timeout=20, what="a step finished"
    )

    async with httpx.AsyncClient(base_url=cluster.checker.gateway_url, timeout=10) as http:
        first = min(cluster.checker.handed_out)
        before = await eventually(
            lambda: _messages(http, first),
            until=bool,
            timeout=20,
            what=f"a stored result of job {first}",
        )
        cluster.node.stop_app()
        # while the broker is unreachable: /ready is red, and POST /schedule answers 503
        # quickly and hands out no offset
        await eventually(
            lambda: _ready(http),
            until=lambda s: s == 503,
            timeout=10,
            what="/ready red while the broker is down",
        )
        began = time.monotonic()
        refused = await cluster.checker.schedule(3)
        assert refused == []
        assert cluster.checker.refused == {503: 3}
        assert time.monotonic() - began < 2.0
        # the ledger keeps serving what it holds while the broker is away
        during = await _messages(http, first)
        assert during[: len(before)] == before
        assert (await http.get(f"/jobs/{first}")).status_code == 200
        cluster.node.start_app()
        await eventually(
            lambda: _ready(http),
            until=lambda s: s == 200,
            timeout=30,
            what="/ready green after the broker is back",
        )

    await _assert_everything_consumes_again(cluster)
    await cluster.checker.wait_until_final(timeout=90)
    verdict = await cluster.checker.verdict()
    verdict.assert_clean()
    assert verdict.states == {"done": JOBS + 5}


async def test_broker_closes_all_connections_consumers_come_back(cluster: Cluster):
    for _ in range(2):
        cluster.start_worker()
    cluster.wait_consumers("jobcast.jobs", 2)
    await cluster.checker.schedule(JOBS)
    await eventually(
        lambda: _some_step_finished(cluster.checker), timeout=20, what="a step finished"
    )

    cluster.node.close_all_connections()

    await _assert_everything_consumes_again(cluster)
    await cluster.checker.wait_until_final(timeout=90)
    verdict = await cluster.checker.verdict()
    verdict.assert_clean()
    assert verdict.states == {"done": JOBS + 5}
