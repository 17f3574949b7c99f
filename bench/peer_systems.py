"""The peers as running systems: each its worker process(es) in a throwaway vhost (and, where
it keeps results, a throwaway PostgreSQL database or Redis server of its own), driven by its own
client process (bench/peers/), which times itself and prints what it saw."""

import asyncio
import json
import os
import shutil
import socket
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psutil

from harness.broker import Vhost, base_url
from harness.processes import Process, free_port, python

BASE_URL = base_url("BENCH_AMQP_URL")
POSTGRES_ADMIN_URL = os.environ.get(
    "JOBCAST_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


@dataclass(frozen=True)
class PeerSpec:
    key: str
    label: str
    client: str
    """The module whose `python -m` runs the client (`w1 N` / `w2 N`)."""
    worker: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    store: str = ""
    """"postgres" or "redis": the result store the peer gets a throwaway one of."""
    ready: str = ""
    """A line the worker logs once it consumes (Celery's client declares its queue itself)."""


CELERY_WORKER = ("-m", "celery", "-A", "bench.peers.celery_peer", "worker", "--loglevel=WARNING")
FASTSTREAM_WORKER = ("-m", "bench.peers.faststream_peer", "worker")
TASKIQ_WORKER = ("-m", "taskiq", "worker", "bench.peers.taskiq_peer:broker")

PEERS = (
    PeerSpec(
        "celery-rpc",
        "Celery, rpc:// results",
        "bench.peers.celery_peer",
        CELERY_WORKER,
        {"BENCH_PEER_BACKEND": "rpc://"},
    ),
    PeerSpec(
        "celery-db",
        "Celery, PostgreSQL results (db+postgresql://)",
        "bench.peers.celery_peer",
        CELERY_WORKER,
        store="postgres",
    ),
    PeerSpec(
        "faststream-classic",
        "FastStream, classic queues",
        "bench.peers.faststream_peer",
        FASTSTREAM_WORKER,
        {"BENCH_PEER_QUEUE_TYPE": "classic"},
        ready="ready",
    ),
    PeerSpec(
        "faststream-quorum",
        "FastStream, quorum queues",
        "bench.peers.faststream_peer",
        FASTSTREAM_WORKER,
        {"BENCH_PEER_QUEUE_TYPE": "quorum"},
        ready="ready",
    ),
    PeerSpec(
        "taskiq",
        "Taskiq on aio-pika, results in Redis",
        "bench.peers.taskiq_peer",
        (*TASKIQ_WORKER, "--ack-type", "when_saved"),
        store="redis",
        ready="Listening started",
    ),
)


def through(url: str, port: int | None) -> str:
    """`url` with its port replaced (the counting relay of bench/wire.py), or as it is."""
    if port is None:
        return url
    parts = urlsplit(url)
    credentials = parts.netloc.rpartition("@")[0]
    return urlunsplit(parts._replace(netloc=f"{credentials}@127.0.0.1:{port}"))


class PostgresDatabase:
    """A database of its own on the local PostgreSQL, dropped with `drop()`."""

    def __init__(self) -> None:
        import psycopg2  # the bench extra

        self.name = f"jobcast_bench_{uuid.uuid4().hex[:12]}"
        self.url = urlunsplit(urlsplit(POSTGRES_ADMIN_URL)._replace(path="/" + self.name))
        self._admin(f'CREATE DATABASE "{self.name}"')
        del psycopg2

    @staticmethod
    def _admin(statement: str) -> list[tuple[object, ...]]:
        import psycopg2

        conn = psycopg2.connect(POSTGRES_ADMIN_URL)
        conn.autocommit = True
        try:
            with conn.cursor() as cursor:
                cursor.execute(statement)
                return list(cursor.fetchall()) if cursor.description else []
        finally:
            conn.close()

    def backend_pids(self) -> list[int]:
        """The server processes serving this database's connections."""
        rows = self._admin(f"SELECT pid FROM pg_stat_activity WHERE datname = '{self.name}'")
        return [int(row[0]) for row in rows]

    def drop(self) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


class RedisServer:
    """A redis-server of its own, at Redis's default settings, in the run's directory."""

    def __init__(self, run_dir: Path) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            raise RuntimeError("redis-server not found: apt-get install redis-server")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        data = run_dir / f"redis-{self.port}"
        data.mkdir()
        self.process = Process(
            f"redis-{self.port}", [exe, "--port", str(self.port), "--dir", str(data)], {}, run_dir
        ).start()
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), 1).close()
                break
            except OSError:
                self.process.check_alive()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        self.process.stop()


class Peer:
    """One peer, started: its worker, its stores; `run("w1"|"w2", n)` runs its client."""

    def __init__(self, spec: PeerSpec, run_dir: Path, relay_port: int | None = None) -> None:
        self.spec = spec
        self.run_dir = run_dir
        self.vhost = Vhost(BASE_URL, f"bench-{spec.key}")
        self.database: PostgresDatabase | None = None
        self.redis: RedisServer | None = None
        self.worker: Process | None = None
        self.env = {"BENCH_PEER_AMQP_URL": through(self.vhost.url, relay_port), **spec.env}
        try:
            if spec.store == "postgres":
                self.database = PostgresDatabase()
                # NOTE: SQLAlchemy 2.1 maps postgresql:// to psycopg 3; name the extra's driver
                self.env["BENCH_PEER_BACKEND"] = "db+" + self.database.url.replace(
                    "postgresql://", "postgresql+psycopg2://", 1
                )
            elif spec.store == "redis":
                self.redis = RedisServer(run_dir)
                self.env["BENCH_PEER_REDIS_URL"] = self.redis.url
            self.worker = Process(
                f"{spec.key}-worker", python(*spec.worker), self.env, run_dir
            ).start()
            if spec.ready:
                self.worker.wait_log(spec.ready)
        except BaseException:
            self.stop()
            raise
        self._clients = 0

    async def run(self, mode: str, jobs: int) -> dict[str, object]:
        """Run the client once (its own warm-up first); what it printed."""
        assert self.worker is not None
        self.worker.check_alive()
        self._clients += 1
        log = self.run_dir / f"{self.spec.key}-client-{self._clients}.log"
        with log.open("wb") as stderr:
            client = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                self.spec.client,
                mode,
                str(jobs),
                env={**os.environ, **self.env},
                stdout=asyncio.subprocess.PIPE,
                stderr=stderr,
            )
            out, _ = await asyncio.wait_for(client.communicate(), 180 + jobs / 10)
        if client.returncode != 0:
            raise RuntimeError(
                f"{self.spec.key} client {mode} {jobs} failed ({client.returncode}):\n"
                + log.read_text()[-3000:]
            )
        return dict(json.loads(out.decode().strip().splitlines()[-1]))

    def processes(self) -> dict[str, list[psutil.Process]]:
        """Every process of the peer but its client, by role, once it runs."""
        assert self.worker is not None
        main = psutil.Process(self.worker.pid)
        found = {"worker": [main, *main.children(recursive=True)]}
        if self.database is not None:
            found["PostgreSQL (its backends)"] = [
                psutil.Process(pid) for pid in self.database.backend_pids()
            ]
        if self.redis is not None:
            found["Redis"] = [psutil.Process(self.redis.process.pid)]
        return found

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()
        if self.redis is not None:
            self.redis.stop()
        if self.database is not None:
            self.database.drop()
        self.vhost.delete()
