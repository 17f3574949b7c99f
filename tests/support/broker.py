"""The RabbitMQ the tests use, and a throwaway vhost per test.

The URL comes from JOBCAST_TEST_AMQP_URL (default: the local broker). Where nothing answers
and a Docker engine exists, testcontainers starts one; in CI an unreachable broker fails.
"""

import os
import shutil
import socket
import subprocess
import uuid
from urllib.parse import quote, urlsplit, urlunsplit

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/"


def base_url() -> str:
    """The broker URL the suite runs against."""
    return os.environ.get("JOBCAST_TEST_AMQP_URL", DEFAULT_URL)


def reachable(url: str, timeout: float = 2.0) -> bool:
    """True if something accepts TCP connections at the URL's host and port."""
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "localhost", parts.port or 5672), timeout):
            return True
    except OSError:
        return False


def with_vhost(url: str, vhost: str) -> str:
    """`url` pointing at `vhost` instead."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + quote(vhost, safe="")))


def rabbitmqctl(*args: str) -> None:
    """Run rabbitmqctl against the local node; fails the test loudly if it fails."""
    exe = shutil.which("rabbitmqctl")
    if exe is None:
        raise RuntimeError("rabbitmqctl not found: vhost isolation needs the local broker's CLI")
    subprocess.run([exe, *args], check=True, capture_output=True, timeout=60)


class Vhost:
    """A vhost of its own for one test: fixed queue names without cross-talk."""

    def __init__(self, base: str) -> None:
        self.name = f"jobcast-test-{uuid.uuid4().hex[:12]}"
        self.url = with_vhost(base, self.name)
        user = urlsplit(base).username or "guest"
        rabbitmqctl("add_vhost", self.name)
        rabbitmqctl("set_permissions", "-p", self.name, user, ".*", ".*", ".*")

    def delete(self) -> None:
        rabbitmqctl("delete_vhost", self.name)
