"""Real processes, started as a user would start them: each with its own environment and log
file, awaited by a log line or an HTTP answer (with deadlines), stopped with SIGTERM."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Self

import httpx

JOBCAST = [sys.executable, "-m", "jobcast"]
"""argv of the `jobcast` command, run by this interpreter."""

POLL_SECONDS = 0.1


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def python(*args: str) -> list[str]:
    """argv running this interpreter."""
    return [sys.executable, *args]


class ProcessError(AssertionError):
    """A process died, or did not say or serve what was awaited in time (the log attached).

    An AssertionError, so a test reports it as a failed check."""


class Process:
    """One subprocess with its own environment and log file: `start()`, wait, stop."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str],
        log_dir: Path,
        *,
        pipe_stdout: bool = False,
    ) -> None:
        self.name = name
        self.argv = argv
        self.env = {**os.environ, **env}
        self.log_path = log_dir / f"{name}.log"
        self.pipe_stdout = pipe_stdout
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        """Start it; its stderr (and stdout, unless piped) goes to the log file."""
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv,
                env=self.env,
                stdout=subprocess.PIPE if self.pipe_stdout else log,
                stderr=log,
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None, f"{self.name} was never started"
        return self.proc.pid

    def wait_url(self, url: str, timeout: float = 30.0) -> None:
        """Block until GET `url` answers 200; ProcessError with the log if it died first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                if httpx.get(url, timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(POLL_SECONDS)
        raise ProcessError(f"{self.name} not ready within {timeout}s:\n{self.log()}")

    def wait_log(self, text: str, timeout: float = 30.0) -> None:
        """Block until `text` appears in the log; ProcessError with the log if it died first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return
            self.check_alive()
            time.sleep(POLL_SECONDS)
        raise ProcessError(f"{text!r} not in {self.name}'s log within {timeout}s:\n{self.log()}")

    def check_alive(self) -> None:
        """ProcessError with the log if the process has exited."""
        if self.proc is not None and self.proc.poll() is not None:
            raise ProcessError(f"{self.name} exited with {self.proc.returncode}:\n{self.log()}")

    def signal(self, sig: int) -> None:
        assert self.proc is not None, f"{self.name} was never started"
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
        assert self.proc is not None, f"{self.name} was never started"
        return self.proc.wait(timeout)

    def stop(self, timeout: float = 20.0) -> None:
        """Best-effort cleanup: SIGTERM, then SIGKILL after `timeout` seconds."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def log(self, last: int | None = None) -> str:
        """The log so far (its `last` characters only, if given)."""
        if not self.log_path.exists():
            return ""
        text = self.log_path.read_text(errors="replace")
        return text if last is None else text[-last:]


class JobcastProcess(Process):
    """One `jobcast <command>` process (text logs); its HTTP port is `JOBCAST_PORT`."""

    def __init__(self, command: str, env: dict[str, str], log_dir: Path, name: str = "") -> None:
        super().__init__(
            name or command, [*JOBCAST, command], {"JOBCAST_LOG_FORMAT": "text", **env}, log_dir
        )
        self.command = command

    @property
    def port(self) -> int:
        return int(self.env.get("JOBCAST_PORT", "8000"))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_http(self, path: str = "/ready", timeout: float = 30.0) -> None:
        """Block until GET `path` on its port answers 200."""
        self.wait_url(self.url + path, timeout)
