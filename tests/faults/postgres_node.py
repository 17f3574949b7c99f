"""A throwaway PostgreSQL cluster (initdb + pg_ctl on a free port), so that stopping it
touches nothing else; the machine's shared cluster keeps running."""

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from harness.processes import free_port


def _bin(name: str) -> str:
    for candidate in (shutil.which(name), *sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))):
        if candidate and Path(candidate).exists():
            return candidate
    raise RuntimeError(f"{name} not found: the PostgreSQL fault scenario needs initdb and pg_ctl")


class PostgresNode:
    """One PostgreSQL cluster in a temporary directory; `start()`, `stop()`, `destroy()`."""

    def __init__(self) -> None:
        # NOTE: PostgreSQL refuses to run as root; as root the cluster belongs to `postgres`,
        # in a directory of its own outside pytest's root-only tmp tree.
        self._as_root = os.geteuid() == 0
        self.dir = Path(tempfile.mkdtemp(prefix="jobcast-fault-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        if self._as_root:
            user = pwd.getpwnam("postgres")
            os.chown(self.dir, user.pw_uid, user.pw_gid)
        self._run(
            _bin("initdb"),
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
            "-E",
            "UTF8",
        )

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str) -> None:
        command = ["runuser", "-u", "postgres", "--", *argv] if self._as_root else list(argv)
        done = subprocess.run(command, capture_output=True, timeout=120, check=False)
        if done.returncode != 0:
            raise RuntimeError(
                f"{' '.join(argv)} failed:\n{done.stdout.decode()}{done.stderr.decode()}"
            )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            _bin("pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.dir / "server.log"),
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        """Stop the cluster (`fast` disconnects every client at once)."""
        self._run(_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def destroy(self) -> None:
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(RuntimeError):
                self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)
