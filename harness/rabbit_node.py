"""A throwaway RabbitMQ node, started with the machine's rabbitmq-server (the fault and cluster
suites' and the cluster bench's).

Stopping its app or closing its connections touches nothing else: it has its own node name,
AMQP and distribution ports, data and log directories, Erlang cookie (its own HOME) and
no plugins. The machine's shared broker keeps running untouched beside it.
"""

import os
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path
from urllib.parse import quote

from harness.broker import rabbitmqctl, reachable
from harness.processes import free_port

# NOTE: rabbitmqctl picks its own distribution port in 35672-35682 (the default dist port
# + 10000); a node port in that range would collide with any CLI call on the machine.
_CLI_DIST_PORTS = range(35600, 35800)


def rabbitmq_scripts() -> Path:
    """Where the real rabbitmq-server script lives (Debian's /usr/sbin one re-execs via su)."""
    configured = os.environ.get("JOBCAST_TEST_RABBITMQ_SBIN")
    if configured:
        return Path(configured)
    debian = Path("/usr/lib/rabbitmq/bin")
    if (debian / "rabbitmq-server").exists():
        return debian
    found = shutil.which("rabbitmq-server")
    if found is None:
        raise RuntimeError("rabbitmq-server not found: the fault suite starts its own node")
    return Path(found).resolve().parent


def _port() -> int:
    while True:
        port = free_port()
        if port not in _CLI_DIST_PORTS:
            return port


class RabbitNode:
    """One RabbitMQ node in a directory of its own; `start()`, break it, `destroy()`.

    `cookie` (the Erlang cookie, shared by the nodes of a cluster; default: Erlang makes one),
    `erl_args` (extra emulator flags, e.g. one scheduler) and `conf` (extra rabbitmq.conf
    lines) are for tests/cluster/'s RabbitCluster."""

    def __init__(
        self,
        base_dir: Path,
        *,
        name: str = "",
        cookie: str = "",
        erl_args: str = "",
        conf: str = "",
    ) -> None:
        self.dir = base_dir
        self.name = name or f"jobcast-fault-{uuid.uuid4().hex[:10]}@localhost"
        self.port = _port()
        self.dist_port = _port()
        self.scripts = rabbitmq_scripts()
        self.erl_args = erl_args
        self.proc: subprocess.Popen[bytes] | None = None
        for sub in ("home", "mnesia", "log"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        if cookie:
            cookie_file = self.dir / "home" / ".erlang.cookie"
            cookie_file.write_text(cookie)
            cookie_file.chmod(0o400)
        (self.dir / "enabled_plugins").write_text("")
        (self.dir / "rabbitmq-env.conf").write_text("")
        (self.dir / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{self.port}\n"
            # deliveries redelivered quickly after a consumer dies; no disk alarm on small /tmp
            "disk_free_limit.absolute = 1MB\n" + conf
        )

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def vhost_url(self, vhost: str) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/{quote(vhost, safe='')}"

    def _env(self, *, server: bool) -> dict[str, str]:
        env = {
            **os.environ,
            "HOME": str(self.dir / "home"),  # the node's and the CLI's Erlang cookie
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_CONF_ENV_FILE": str(self.dir / "rabbitmq-env.conf"),
        }
        if server:
            env.update(
                {
                    "RABBITMQ_NODE_PORT": str(self.port),
                    # NOTE: only the server gets the dist port; the CLI would try to bind it too.
                    "RABBITMQ_DIST_PORT": str(self.dist_port),
                    "RABBITMQ_MNESIA_BASE": str(self.dir / "mnesia"),
                    "RABBITMQ_LOG_BASE": str(self.dir / "log"),
                    "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.dir / "enabled_plugins"),
                    "RABBITMQ_CONFIG_FILE": str(self.dir / "rabbitmq.conf"),
                    "RABBITMQ_PID_FILE": str(self.dir / "node.pid"),
                    "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": (
                        f"-kernel inet_dist_use_interface {{127,0,0,1}} {self.erl_args}"
                    ).strip(),
                }
            )
            env.pop("RABBITMQ_ALLOW_INPUT", None)
        return env

    def start(self, timeout: float = 90.0) -> "RabbitNode":
        """Start the node and return once it accepts AMQP connections."""
        (self.dir / "node.pid").unlink(missing_ok=True)  # a killed node's, stale
        log = (self.dir / "server.log").open("ab")
        self.proc = subprocess.Popen(
            [str(self.scripts / "rabbitmq-server")],
            env=self._env(server=True),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.dir,
            start_new_session=True,
        )
        self.ctl(
            "wait", "--timeout", str(int(timeout)), str(self.dir / "node.pid"), timeout=timeout + 5
        )
        self.wait_amqp(timeout)
        return self

    def wait_amqp(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not reachable(self.url, timeout=0.5):
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"RabbitMQ node {self.name} died:\n{self.server_log()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"RabbitMQ node {self.name} not answering on {self.port}")
            time.sleep(0.1)

    def ctl(self, *args: str, timeout: float = 60.0) -> str:
        """rabbitmqctl against this node; raises with its output if it fails."""
        return rabbitmqctl(
            *args,
            executable=str(self.scripts / "rabbitmqctl"),
            node=self.name,
            env=self._env(server=False),
            timeout=timeout,
        )

    def queues_ctl(self, *args: str, timeout: float = 60.0) -> str:
        """rabbitmq-queues against this node; raises with its output if it fails."""
        return rabbitmqctl(
            *args,
            executable=str(self.scripts / "rabbitmq-queues"),
            node=self.name,
            env=self._env(server=False),
            timeout=timeout,
        )

    # -- the faults ----------------------------------------------------------------------

    def stop_app(self) -> None:
        """Stop the broker application: every connection drops, the port closes."""
        self.ctl("stop_app")

    def start_app(self) -> None:
        self.ctl("start_app")
        self.wait_amqp()

    def kill(self) -> None:
        """kill -9 the node's Erlang VM: no goodbye to clients or to the other nodes."""
        pid = int((self.dir / "node.pid").read_text().split()[0])
        os.kill(pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(30)  # the rabbitmq-server script ends with its VM

    def stop(self) -> None:
        """Stop the whole node cleanly (rabbitmqctl stop): its clients are disconnected."""
        self.ctl("stop", timeout=120)
        if self.proc is not None:
            self.proc.wait(60)

    def close_all_connections(self) -> None:
        """Close every client connection from the broker side (the node stays up)."""
        self.ctl("close_all_connections", "--global", "jobcast fault suite")

    # -- isolation -----------------------------------------------------------------------

    def add_vhost(self, name: str) -> str:
        self.ctl("add_vhost", name)
        self.ctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
        return self.vhost_url(name)

    def delete_vhost(self, name: str) -> None:
        self.ctl("delete_vhost", name)

    def consumers(self, vhost: str) -> dict[str, int]:
        """Consumers per queue in `vhost`, as the broker counts them."""
        return self._per_queue(vhost, "consumers")

    def depths(self, vhost: str) -> dict[str, int]:
        """Messages (ready and unacked) per queue in `vhost`."""
        return self._per_queue(vhost, "messages")

    def _per_queue(self, vhost: str, column: str) -> dict[str, int]:
        out = self.ctl("list_queues", "-p", vhost, "name", column, "--no-table-headers", "--quiet")
        found: dict[str, int] = {}
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1].isdigit():
                found[parts[0]] = int(parts[1])
        return found

    def server_log(self) -> str:
        path = self.dir / "server.log"
        return path.read_text(errors="replace")[-5000:] if path.exists() else ""

    def destroy(self) -> None:
        """Stop the node and remove its directories."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.ctl("stop", timeout=60)
                self.proc.wait(30)
            except (RuntimeError, subprocess.TimeoutExpired):
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)
