"""The RabbitMQ the tests and the bench run on: is it answering, rabbitmqctl, a throwaway vhost.

Standard library only: `harness.services` imports it before the venv exists.
"""

import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Mapping
from urllib.parse import quote, urlsplit, urlunsplit

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/"


def base_url(variable: str = "JOBCAST_TEST_AMQP_URL") -> str:
    """The broker URL in the environment `variable` (default: the local broker)."""
    return os.environ.get(variable, DEFAULT_URL)


def reachable(url: str, timeout: float = 2.0) -> bool:
    """True if something accepts TCP connections at the URL's host and port."""
    parts = urlsplit(url)
    default_port = {"amqp": 5672, "amqps": 5671, "postgresql": 5432, "postgres": 5432}
    port = parts.port or default_port.get(parts.scheme, 5672)
    try:
        with socket.create_connection((parts.hostname or "localhost", port), timeout):
            return True
    except OSError:
        return False


def with_vhost(url: str, vhost: str) -> str:
    """`url` pointing at `vhost` instead."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + quote(vhost, safe="")))


def rabbitmqctl(
    *args: str,
    executable: str | None = None,
    node: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 60.0,
) -> str:
    """Run rabbitmqctl (the machine's, or `executable`) and return its output.

    `node` and `env` aim it at another node than the machine's own. RuntimeError with the
    command's output if it fails or is not installed.
    """
    exe = executable or shutil.which("rabbitmqctl")
    if exe is None:
        raise RuntimeError("rabbitmqctl not found: it comes with the rabbitmq-server package")
    argv = [exe, *(["-n", node] if node else []), *args]
    done = subprocess.run(
        argv, env=None if env is None else dict(env), capture_output=True, timeout=timeout
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"rabbitmqctl {' '.join(args)} failed ({done.returncode}):\n"
            f"{done.stdout.decode(errors='replace')}{done.stderr.decode(errors='replace')}"
        )
    return done.stdout.decode(errors="replace")


class Vhost:
    """A vhost of its own on the local broker (fixed queue names without cross-talk), deleted
    with everything in it by `delete()`."""

    def __init__(self, base: str, label: str = "test") -> None:
        self.name = f"jobcast-{label}-{uuid.uuid4().hex[:12]}"
        self.url = with_vhost(base, self.name)
        user = urlsplit(base).username or "guest"
        rabbitmqctl("add_vhost", self.name)
        rabbitmqctl("set_permissions", "-p", self.name, user, ".*", ".*", ".*")

    def delete(self) -> None:
        rabbitmqctl("delete_vhost", self.name)
