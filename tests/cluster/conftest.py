"""Fixtures of the cluster suite (issue 14): one throwaway three-node RabbitMQ cluster per
module, and per scenario a jobcast deployment on it: two gateways on one PostgreSQL ledger and
three workers, each process starting on a different node, with submitters and followers."""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from client.amqp import AmqpTransport
from client.errors import ScheduleRejectedError
from contracts import BrokerUnavailableError, JobRequest
from contracts.topology import REPLIES_EXCHANGE
from harness.processes import JobcastProcess, free_port
from harness.rabbit_cluster import RabbitCluster
from tests.conftest import Spawner
from tests.faults.checker import OBSERVER_QUEUE, Checker
from tests.support.database import PostgresDatabase

REPO_ROOT = Path(__file__).resolve().parents[2]
STEP_SECONDS = 0.2
REQUEST = {"deployment": "cluster", "framework": "jepsen", "fn": "counted"}


@pytest.fixture(scope="module")
def rabbit_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitCluster]:
    """Three RabbitMQ nodes of our own in one cluster, for the whole module."""
    cluster = RabbitCluster(tmp_path_factory.mktemp("rabbit-cluster"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


@dataclass
class Submission:
    """One job handed to a gateway: how, when, and after how many tries."""

    via: str  # "http" or "amqp"
    gateway: int  # 0 (A) or 1 (B): the gateway (HTTP) or the client's first node (AMQP)
    key: str
    sent: float
    accepted: float = 0.0
    offset: int = -1
    tries: int = 0


@dataclass
class FeedFollower:
    """A follower of every job's replies on one gateway (GET /jobs/stream), live from now."""

    gateway: JobcastProcess
    seen: list[tuple[int, int, int, str, float]] = field(default_factory=list)
    """(cursor, offset, seq, kind, received at wall-clock time) per event, in arrival order."""
    task: asyncio.Task[None] | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, http: httpx.AsyncClient) -> None:
        # NOTE: no read timeout: a quiet stream is no failure (the gateway pings it anyway)
        timeout = httpx.Timeout(10, read=None)
        url = f"{self.gateway.url}/jobs/stream"
        async with http.stream("GET", url, timeout=timeout) as response:
            assert response.status_code == 200
            cursor = -1
            async for line in response.aiter_lines():
                if line.startswith(": position"):
                    self.ready.set()
                elif line.startswith("id:"):
                    cursor = int(line.removeprefix("id:"))
                elif line.startswith("data:"):
                    event = orjson.loads(line.removeprefix("data:"))
                    if event["kind"] != "progress":
                        self.seen.append(
                            (cursor, event["offset"], event["seq"], event["kind"], time.time())
                        )


@dataclass
class Deployment:
    """Two gateways (A starts on node 0, B on node 1) on one PostgreSQL ledger and three
    workers (worker i on node i), on a fresh vhost of the cluster."""

    cluster: RabbitCluster
    vhost: str
    database_url: str
    spawn: Spawner
    exec_log: Path
    gateways: list[JobcastProcess] = field(default_factory=list)
    workers: list[JobcastProcess] = field(default_factory=list)
    submissions: list[Submission] = field(default_factory=list)
    followers: list[FeedFollower] = field(default_factory=list)
    http: httpx.AsyncClient = field(default_factory=lambda: httpx.AsyncClient(timeout=10))
    amqp: list[AmqpTransport] = field(default_factory=list)

    def env(self, first_node: int) -> dict[str, str]:
        """The environment of a process whose JOBCAST_AMQP_URL starts at `first_node`."""
        size = len(self.cluster.nodes)
        order = [(first_node + i) % size for i in range(size)]
        return {
            "JOBCAST_AMQP_URL": self.cluster.url(self.vhost, order),
            "JOBCAST_DATABASE_URL": self.database_url,
            "JOBCAST_QUORUM_SIZE": "3",
            "JOBCAST_PORT": str(free_port()),
            "JOBCAST_STEP_SECONDS": str(STEP_SECONDS),
            "JOBCAST_PIPELINES": "tests.faults.pipelines",
            "JOBCAST_WORKER_CONCURRENCY": "8",
            "JOBCAST_STEP_ATTEMPTS": "3",
            "JOBCAST_RETRY_INITIAL_SECONDS": "0.2",
            "JOBCAST_RETRY_MAX_SECONDS": "1",
            "JOBCAST_GRACE_SECONDS": "5",
            "JOBCAST_PUBLISH_TIMEOUT_SECONDS": "5",
            "FAULTS_EXEC_LOG": str(self.exec_log),
            "PYTHONPATH": str(REPO_ROOT),
        }

    async def start(self) -> None:
        # NOTE: A first: it declares the queues, so node 0 (its first) leads them (RabbitMQ
        # 3.10 places a new quorum queue's leader on the node its declaring client is on).
        for i in range(2):
            gateway = self.spawn("gateway", self.env(i), name=f"gateway-{'ab'[i]}")
            self.gateways.append(gateway)
            await asyncio.to_thread(gateway.wait_http, "/ready", 60)
        for i in range(3):
            self.workers.append(self.spawn("worker", self.env(i), name=f"worker-{i}"))
        await asyncio.to_thread(self.wait_consumers, "jobcast.jobs", 3)
        await asyncio.to_thread(self.wait_consumers, "jobcast.ledger", 2)
        await self._observe_topic()
        for first_node in (0, 2):
            self.amqp.append(AmqpTransport(self.cluster.url(self.vhost, _order(first_node)), 5))
        for gateway in self.gateways:
            follower = FeedFollower(gateway)
            follower.task = asyncio.create_task(follower.run(self.http))
            await asyncio.wait_for(follower.ready.wait(), 30)
            self.followers.append(follower)

    async def _observe_topic(self) -> None:
        """The checker's observer queue on reply.*, as a quorum queue: it lives through the
        loss of any one node (a classic queue lives on one)."""
        connection = await _connect_any(self.cluster, self.vhost)
        async with connection:
            channel = await connection.channel()
            queue = await channel.declare_queue(
                OBSERVER_QUEUE, durable=True, arguments={"x-queue-type": "quorum"}
            )
            await queue.bind(REPLIES_EXCHANGE.name, routing_key="reply.*")

    def wait_consumers(self, queue: str, count: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        seen: dict[str, int] = {}
        while time.monotonic() < deadline:
            try:
                seen = self.cluster.running()[0].consumers(self.vhost)
            except RuntimeError:
                seen = {}
            if seen.get(queue, 0) >= count:
                return
            time.sleep(0.3)
        raise AssertionError(f"{queue} has {seen.get(queue, 0)} consumers, want {count}: {seen}")

    async def submit(self, via: str, gateway: int, deadline: float = 90.0) -> Submission:
        """Hand one job to gateway `gateway` over `via`, retrying with the same idempotency
        key until it is accepted (a node loss may answer 503 or time out meanwhile)."""
        sub = Submission(via, gateway, uuid.uuid4().hex, time.monotonic())
        self.submissions.append(sub)
        until = sub.sent + deadline
        while True:
            sub.tries += 1
            try:
                sub.offset = await self._submit_once(sub)
                sub.accepted = time.monotonic()
                return sub
            except (httpx.TransportError, BrokerUnavailableError, _Unavailable):
                pass
            except ScheduleRejectedError as exc:
                raise AssertionError(f"{sub} refused: {exc}") from exc
            if time.monotonic() > until:
                raise AssertionError(f"{sub} not accepted within {deadline}s")
            await asyncio.sleep(0.2)

    async def _submit_once(self, sub: Submission) -> int:
        if sub.via == "amqp":
            accepted = await self.amqp[sub.gateway].schedule(JobRequest(**REQUEST), sub.key)
            return accepted.offset
        answer = await self.http.post(
            f"{self.gateways[sub.gateway].url}/schedule",
            json=REQUEST,
            headers={"Idempotency-Key": sub.key},
        )
        if answer.status_code in (502, 503, 504):
            raise _Unavailable(answer.text)
        assert answer.status_code == 200, answer.text
        return int(answer.json()["offset"])

    async def submit_during(self, fault: asyncio.Future[Any], every: float = 0.25) -> None:
        """Submit a job every `every` seconds, round-robin over HTTP and AMQP and gateways A and
        B (at most 8 waiting for their offset), until `fault` is over; then wait for all."""
        kinds = [("http", 0), ("amqp", 0), ("http", 1), ("amqp", 1)]
        pending: set[asyncio.Task[Submission]] = set()
        n = 0
        while not fault.done():
            if len(pending) < 8:
                via, gateway = kinds[n % len(kinds)]
                pending.add(asyncio.create_task(self.submit(via, gateway)))
                n += 1
            await asyncio.sleep(every)
            for task in [t for t in pending if t.done()]:
                pending.discard(task)
                task.result()
        for result in await asyncio.gather(*pending):
            assert result.offset >= 0
        await fault

    def checker(self) -> Checker:
        checker = Checker(
            self.gateways[0].url,
            self.cluster.running()[0].vhost_url(self.vhost),
            self.database_url,
            self.exec_log,
        )
        checker.handed_out.update(s.offset for s in self.submissions)
        return checker

    async def close(self) -> None:
        for follower in self.followers:
            if follower.task is not None:
                follower.task.cancel()
        await asyncio.gather(*(f.task for f in self.followers if f.task), return_exceptions=True)
        for transport in self.amqp:
            await transport.close()
        await self.http.aclose()


class _Unavailable(Exception):
    """The gateway answered 502/503/504: try again."""


def _order(first: int, size: int = 3) -> list[int]:
    return [(first + i) % size for i in range(size)]


async def _connect_any(cluster: RabbitCluster, vhost: str) -> Any:
    from messaging.connection import connect_once

    return await connect_once(cluster.url(vhost))


@pytest.fixture
async def deployment(rabbit_cluster: RabbitCluster, tmp_path: Path) -> AsyncIterator[Deployment]:
    vhost = f"cluster-{uuid.uuid4().hex[:10]}"
    rabbit_cluster.add_vhost(vhost)
    database = PostgresDatabase()
    await database.create()
    spawner = Spawner(tmp_path)
    found = Deployment(rabbit_cluster, vhost, database.url, spawner, tmp_path / "executions.log")
    try:
        await found.start()
        yield found
    finally:
        await found.close()
        spawner.stop_all()
        for node in rabbit_cluster.nodes:  # a scenario that failed half-way leaves it down
            if node.proc is None or node.proc.poll() is not None:
                node.start()
        rabbit_cluster.ctl("delete_vhost", vhost)
        await database.drop()
