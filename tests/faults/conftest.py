"""Fixtures of the fault suite: a throwaway RabbitMQ node, a vhost on it per test, and a
small jobcast cluster (gateway + workers as real subprocesses) with its checker."""

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness.processes import JobcastProcess, free_port
from harness.rabbit_node import RabbitNode
from tests.conftest import Spawner
from tests.faults.checker import Checker

REPO_ROOT = Path(__file__).resolve().parents[2]
STEP_SECONDS = 0.4


@pytest.fixture(scope="session")
def rabbit_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitNode]:
    """One RabbitMQ node of our own for the whole fault suite (tests isolate by vhost)."""
    node = RabbitNode(tmp_path_factory.mktemp("rabbit-node"))
    try:
        node.start()
        yield node
    finally:
        node.destroy()


@pytest.fixture
def node_vhost(rabbit_node: RabbitNode) -> Iterator[str]:
    """A fresh vhost on the throwaway node; the node's app is running again afterwards."""
    name = f"faults-{uuid.uuid4().hex[:10]}"
    rabbit_node.add_vhost(name)
    yield name
    try:
        rabbit_node.wait_amqp(timeout=1)
    except RuntimeError:  # a scenario failed with the app stopped
        rabbit_node.start_app()
    rabbit_node.delete_vhost(name)


@pytest.fixture
def fault_env(rabbit_node: RabbitNode, node_vhost: str, tmp_path: Path) -> dict[str, str]:
    """Environment of every jobcast process in one scenario."""
    return {
        "JOBCAST_AMQP_URL": rabbit_node.vhost_url(node_vhost),
        "JOBCAST_DATABASE_URL": f"sqlite:///{tmp_path / 'ledger.db'}",
        "JOBCAST_PORT": str(free_port()),
        "JOBCAST_STEP_SECONDS": str(STEP_SECONDS),
        "JOBCAST_PIPELINES": "tests.faults.pipelines",
        "JOBCAST_WORKER_CONCURRENCY": "4",
        "JOBCAST_STEP_ATTEMPTS": "3",
        "JOBCAST_RETRY_INITIAL_SECONDS": "0.2",
        "JOBCAST_RETRY_MAX_SECONDS": "1",
        "JOBCAST_GRACE_SECONDS": "10",
        "JOBCAST_PUBLISH_TIMEOUT_SECONDS": "3",
        "FAULTS_EXEC_LOG": str(tmp_path / "executions.log"),
        # the workers import tests.faults.pipelines from this checkout, wherever pytest runs
        "PYTHONPATH": str(REPO_ROOT),
    }


@dataclass
class Cluster:
    """A gateway and workers against the throwaway node, and the checker judging them."""

    node: RabbitNode
    vhost: str
    env: dict[str, str]
    spawn: Spawner
    checker: Checker
    gateway: JobcastProcess | None = None
    workers: list[JobcastProcess] = field(default_factory=list)

    def start_gateway(self, name: str = "gateway") -> JobcastProcess:
        self.gateway = self.spawn("gateway", self.env, name=name)
        self.gateway.wait_http("/ready", timeout=30)
        return self.gateway

    def start_worker(self, name: str = "") -> JobcastProcess:
        worker = self.spawn("worker", self.env, name=name or f"worker-{len(self.workers)}")
        self.workers.append(worker)
        return worker

    def wait_consumers(self, queue: str, count: int, timeout: float = 30.0) -> None:
        """Block until the broker counts `count` consumers on `queue` (deadline)."""
        deadline = time.monotonic() + timeout
        seen: dict[str, int] = {}
        while time.monotonic() < deadline:
            seen = self.node.consumers(self.vhost)
            if seen.get(queue, 0) >= count:
                return
            time.sleep(0.2)
        raise AssertionError(f"{queue} has {seen.get(queue, 0)} consumers, want {count}: {seen}")


@pytest.fixture
async def cluster(
    rabbit_node: RabbitNode,
    node_vhost: str,
    fault_env: dict[str, str],
    spawn: Spawner,
    tmp_path: Path,
) -> Cluster:
    """A gateway up and observed; start workers with `cluster.start_worker()`."""
    found = Cluster(
        rabbit_node,
        node_vhost,
        fault_env,
        spawn,
        Checker(
            f"http://127.0.0.1:{fault_env['JOBCAST_PORT']}",
            fault_env["JOBCAST_AMQP_URL"],
            fault_env["JOBCAST_DATABASE_URL"],
            Path(fault_env["FAULTS_EXEC_LOG"]),
        ),
    )
    found.start_gateway()
    await found.checker.observe_topic()
    return found
