"""jobcast's real processes, started as a user would: the `jobcast` command."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

JOBCAST = [sys.executable, "-m", "jobcast"]


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class JobcastProcess:
    """One `jobcast <command>` subprocess with its own environment and log file."""

    def __init__(self, command: str, env: dict[str, str], log_dir: Path, name: str = "") -> None:
        self.command = command
        self.env = {**os.environ, "JOBCAST_LOG_FORMAT": "text", **env}
        self.name = name or command
        self.log_path = log_dir / f"{self.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        return int(self.env.get("JOBCAST_PORT", "8000"))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "JobcastProcess":
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [*JOBCAST, self.command],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def wait_http(self, path: str = "/ready", timeout: float = 30.0) -> None:
        """Block until GET `path` answers 200; fails with the log if the process died."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                if httpx.get(self.url + path, timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"{self.name} not ready within {timeout}s:\n{self.log()}")

    def wait_log(self, text: str, timeout: float = 30.0) -> None:
        """Block until `text` appears in the process's log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return
            self._check_alive()
            time.sleep(0.1)
        raise AssertionError(f"{text!r} not in {self.name}'s log within {timeout}s:\n{self.log()}")

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def kill(self) -> None:
        """kill -9: no cleanup, no goodbye."""
        self.signal(signal.SIGKILL)
        self.wait(10)

    def terminate(self, timeout: float = 60.0) -> int:
        """SIGTERM and wait; returns the exit code."""
        self.signal(signal.SIGTERM)
        return self.wait(timeout)

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self) -> None:
        """Best-effort cleanup after a test."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def _check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n{self.log()}")
