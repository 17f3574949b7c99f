"""Processes, throwaway vhosts and memory sampling for the bench: plumbing, no measurements."""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
import psutil

BASE_URL = os.environ.get("BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _rabbitmqctl(*args: str) -> None:
    exe = shutil.which("rabbitmqctl")
    if exe is None:
        raise RuntimeError("rabbitmqctl not found: the bench isolates itself in a vhost")
    subprocess.run([exe, *args], check=True, capture_output=True, timeout=60)


class Vhost:
    """A throwaway vhost, deleted (with everything in it) by `delete()`."""

    def __init__(self, label: str) -> None:
        self.name = f"jobcast-bench-{label}-{uuid.uuid4().hex[:8]}"
        parts = urlsplit(BASE_URL)
        self.url = urlunsplit(parts._replace(path="/" + quote(self.name, safe="")))
        _rabbitmqctl("add_vhost", self.name)
        _rabbitmqctl(
            "set_permissions", "-p", self.name, parts.username or "guest", ".*", ".*", ".*"
        )

    def delete(self) -> None:
        _rabbitmqctl("delete_vhost", self.name)


class Process:
    """A subprocess with its own environment and log file, stopped with SIGTERM."""

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
        self.log_path = log_dir / f"{name}.log"
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            argv,
            env={**os.environ, **env},
            stderr=log,
            stdout=subprocess.PIPE if pipe_stdout else log,
            start_new_session=True,
        )
        self.ps = psutil.Process(self.proc.pid)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def rss(self) -> int:
        """Resident set size in bytes."""
        return int(self.ps.memory_info().rss)

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def wait_http(self, url: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                if httpx.get(url, timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready within {timeout}s:\n{self.log()}")

    def wait_log(self, text: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log_path.read_text(errors="replace"):
                return
            self.check_alive()
            time.sleep(0.1)
        raise RuntimeError(f"{text!r} not in {self.name}'s log within {timeout}s:\n{self.log()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def python(*args: str) -> list[str]:
    """argv running this interpreter."""
    return [sys.executable, *args]


class RssSampler:
    """Samples the RSS of some processes every `every` seconds in a thread."""

    def __init__(self, processes: dict[str, Process], every: float = 0.25) -> None:
        self._processes = processes
        self._every = every
        self.samples: dict[str, list[int]] = {name: [] for name in processes}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            self._sample()

    def _sample(self) -> None:
        for name, process in self._processes.items():
            with contextlib.suppress(psutil.Error):
                self.samples[name].append(process.rss())

    def peak(self, name: str) -> int:
        return max(self.samples[name])

    def growth(self, name: str) -> int:
        """Peak RSS in the last quarter of the run minus the peak in its first quarter."""
        series = self.samples[name]
        quarter = max(1, len(series) // 4)
        return max(series[-quarter:]) - max(series[:quarter])
