"""A throwaway three-node RabbitMQ cluster, the cluster suite's and bench.cluster's (issue 14):
three harness/rabbit_node.RabbitNode's with one Erlang cookie, joined with `rabbitmqctl
join_cluster`, each on one Erlang scheduler so that three fit on two cores.
The machine's shared broker is never touched."""

import concurrent.futures
import time
import uuid
from pathlib import Path

from harness.rabbit_node import RabbitNode

# NOTE: one scheduler per node and no busy-waiting schedulers: three idle nodes would
# otherwise spin both cores.
ERL_ARGS = "+S 1:1 +SDio 1 +A 4 +sbwt none +sbwtdcpu none +sbwtdio none"
CONF = (
    "vm_memory_high_watermark.absolute = 768MB\n"
    # a smaller write-ahead log per node: less memory, quicker recovery after kill -9
    "raft.wal_max_size_bytes = 16777216\n"
)


class RabbitCluster:
    """Three nodes in one cluster; `start()`, break some, `destroy()`."""

    def __init__(self, base_dir: Path, size: int = 3) -> None:
        tag = uuid.uuid4().hex[:8]
        cookie = uuid.uuid4().hex.upper()
        self.nodes = [
            RabbitNode(
                base_dir / f"node-{i}",
                name=f"jobcast-cluster-{tag}-{i}@localhost",
                cookie=cookie,
                erl_args=ERL_ARGS,
                conf=CONF,
            )
            for i in range(size)
        ]

    def start(self) -> "RabbitCluster":
        """Start every node, then join the others to the first."""
        with concurrent.futures.ThreadPoolExecutor(len(self.nodes)) as pool:
            list(pool.map(lambda node: node.start(), self.nodes))
        first = self.nodes[0]
        for node in self.nodes[1:]:
            node.ctl("stop_app")
            node.ctl("join_cluster", first.name)
            node.ctl("start_app")
            node.wait_amqp()
        return self

    def url(self, vhost: str, order: list[int] | None = None) -> str:
        """JOBCAST_AMQP_URL naming every node (in `order`, default 0, 1, 2) on `vhost`."""
        hosts = ",".join(f"127.0.0.1:{self.nodes[i].port}" for i in order or range(len(self.nodes)))
        return self.nodes[0].vhost_url(vhost).replace(f"127.0.0.1:{self.nodes[0].port}", hosts)

    def running(self) -> list[RabbitNode]:
        return [n for n in self.nodes if n.proc is not None and n.proc.poll() is None]

    def ctl(self, *args: str, timeout: float = 60.0) -> str:
        """rabbitmqctl against the first running node."""
        return self.running()[0].ctl(*args, timeout=timeout)

    def node_named(self, name: str) -> RabbitNode:
        return next(n for n in self.nodes if n.name == name)

    def leaders(self, vhost: str) -> dict[str, str]:
        """The node leading each quorum queue of `vhost`."""
        out = self.ctl("list_queues", "-p", vhost, "name", "leader", "--no-table-headers", "-q")
        return {
            parts[0]: parts[1]
            for line in out.splitlines()
            if len(parts := line.split()) == 2 and "@" in parts[1]
        }

    def members(self, vhost: str, queue: str) -> str:
        out = self.ctl("list_queues", "-p", vhost, "name", "members", "--no-table-headers", "-q")
        return next((line for line in out.splitlines() if line.startswith(queue + "\t")), "")

    def wait_quorum_safe(self, node: RabbitNode, timeout: float = 60.0) -> None:
        """Block until stopping `node` would leave every quorum queue a majority (deadline)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                node.queues_ctl("check_if_node_is_quorum_critical")
                out = ""
            except RuntimeError as exc:
                out = str(exc) or "quorum critical"
            if out == "":
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{node.name} is still quorum critical: {out}")
            time.sleep(0.5)

    def add_vhost(self, name: str) -> None:
        self.ctl("add_vhost", name)
        self.ctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")

    def destroy(self) -> None:
        for node in self.nodes:
            node.destroy()
