"""The systems under test, each started as real processes in its own vhost: jobcast, the
aio-pika pipeline and the FastAPI example. Each says how to submit jobs and how many are done."""

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from bench.baselines import pika_pipeline
from bench.peer_systems import through
from harness.broker import Vhost, base_url
from harness.processes import JobcastProcess, Process, free_port, python

BASE_URL = base_url("BENCH_AMQP_URL")

JOB = {"deployment": "Docker", "framework": "FastAPI", "fn": "default_fn"}


class Jobcast:
    """`jobcast gateway` plus `jobcast worker` processes on a SQLite ledger."""

    def __init__(self, run_dir: Path, relay_port: int | None = None) -> None:
        self.vhost = Vhost(BASE_URL, "bench-jobcast")
        self.amqp_url = through(self.vhost.url, relay_port)
        """Where its processes and the bench's clients connect (through bench/wire.py's relay)."""
        self.run_dir = run_dir
        self.ledger_path = run_dir / "ledger.db"
        self.port = free_port()
        self.http_url = f"http://127.0.0.1:{self.port}"
        self.env = {
            "JOBCAST_AMQP_URL": self.amqp_url,
            "JOBCAST_DATABASE_URL": f"sqlite:///{self.ledger_path}",
            "JOBCAST_PORT": str(self.port),
            "JOBCAST_STEP_SECONDS": "0",
            "JOBCAST_LOG_FORMAT": "text",
        }
        self.gateway: JobcastProcess | None = None
        self.worker: JobcastProcess | None = None
        self._workers = 0
        self._reader: sqlite3.Connection | None = None
        self._settled_below = 0
        self._done_below = 0

    def start_gateway(self) -> None:
        self.gateway = JobcastProcess("gateway", self.env, self.run_dir, "jobcast-gateway")
        self.gateway.start().wait_http("/ready")

    def start_worker(self, **settings: str) -> None:
        """(Re)start the one worker with extra JOBCAST_ settings (e.g. step_seconds="0.1")."""
        if self.worker is not None:
            self.worker.stop()
        env = {**self.env, **{f"JOBCAST_{k.upper()}": v for k, v in settings.items()}}
        self._workers += 1
        self.worker = JobcastProcess("worker", env, self.run_dir, f"jobcast-worker-{self._workers}")
        self.worker.start().wait_log("worker consuming")

    def done_count(self) -> int:
        """Jobs whose done reply is committed in the ledger, i.e. readable on GET /messages."""
        # NOTE: incremental: a count(*) over the whole growing ledger every poll cost the bench
        # process more CPU than the aio-pika recorder's in-memory count, on the cores jobcast
        # runs on. Jobs below the mark are settled (done and failed are final states) and
        # counted once; the queries scan only from the mark (the `jobs` primary key) up.
        reader = self._connect()
        # NOTE: one statement, so one snapshot: the first job still open, or past the last.
        (first_open,) = reader.execute(
            "SELECT coalesce("
            " (SELECT min(id) FROM jobs WHERE id >= ? AND state NOT IN ('done', 'failed')),"
            " (SELECT coalesce(max(id), -1) + 1 FROM jobs))",
            (self._settled_below,),
        ).fetchone()
        if first_open > self._settled_below:
            (settled,) = reader.execute(
                "SELECT count(*) FROM jobs WHERE id >= ? AND id < ? AND state = 'done'",
                (self._settled_below, first_open),
            ).fetchone()
            self._done_below += settled
            self._settled_below = first_open
        (done_above,) = reader.execute(
            "SELECT count(*) FROM jobs WHERE id >= ? AND state = 'done'", (self._settled_below,)
        ).fetchone()
        return self._done_below + int(done_above)

    def _connect(self) -> sqlite3.Connection:
        if self._reader is None:
            self._reader = sqlite3.connect(
                f"file:{self.ledger_path}?mode=ro", uri=True, check_same_thread=False
            )
        return self._reader

    def reply_count(self) -> int:
        return int(self._connect().execute("SELECT count(*) FROM replies").fetchone()[0])

    def ledger_bytes(self) -> int:
        """Bytes the ledger file takes once the WAL is checkpointed into it."""
        with sqlite3.connect(self.ledger_path) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            pages = conn.execute("PRAGMA page_count").fetchone()[0]
            free = conn.execute("PRAGMA freelist_count").fetchone()[0]
            size = conn.execute("PRAGMA page_size").fetchone()[0]
        return int((pages - free) * size)

    def stop(self) -> None:
        if self._reader is not None:
            self._reader.close()
        for process in (self.worker, self.gateway):
            if process is not None:
                process.stop()
        self.vhost.delete()


class PikaBaseline:
    """The aio-pika pipeline: a worker process and a recorder process."""

    def __init__(self, run_dir: Path, relay_port: int | None = None) -> None:
        self.vhost = Vhost(BASE_URL, "bench-pika")
        self.amqp_url = through(self.vhost.url, relay_port)
        self.run_dir = run_dir
        self.recorder = Process(
            "pika-recorder",
            python("-m", "bench.baselines.pika_pipeline", "recorder", self.amqp_url),
            {},
            run_dir,
            pipe_stdout=True,
        ).start()
        self._expect_ready(self.recorder)
        self.worker: Process | None = None
        self.start_worker()
        self.first: dict[int, float] = {}
        self.done: dict[int, float] = {}
        self._waiters: dict[tuple[str, int], Callable[[], None]] = {}
        self._lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def start_worker(self, step_seconds: float = 0.0) -> None:
        if self.worker is not None:
            self.worker.stop()
        self.worker = Process(
            "pika-worker",
            python("-m", "bench.baselines.pika_pipeline", "worker", self.amqp_url),
            {"BENCH_STEP_SECONDS": str(step_seconds)},
            self.run_dir,
            pipe_stdout=True,
        ).start()
        self._expect_ready(self.worker)

    @staticmethod
    def _expect_ready(process: Process) -> None:
        assert process.proc.stdout is not None
        line = process.proc.stdout.readline()
        if line.strip() != b"ready":
            raise RuntimeError(f"{process.name} did not start:\n{process.log()}")

    def _read(self) -> None:
        assert self.recorder.proc.stdout is not None
        for line in self.recorder.proc.stdout:
            now = time.perf_counter()
            kind, offset = line.split()
            key = (kind.decode(), int(offset))
            with self._lock:
                (self.first if key[0] == "F" else self.done)[key[1]] = now
                wake = self._waiters.pop(key, None)
            if wake is not None:
                wake()

    def done_count(self) -> int:
        return len(self.done)

    async def wait_for(self, kind: str, offset: int) -> float:
        """perf_counter() time at which the recorder held the job's first ("F") or done ("D")."""
        loop = asyncio.get_running_loop()
        event = asyncio.Event()
        table = self.first if kind == "F" else self.done
        with self._lock:
            if offset not in table:
                self._waiters[(kind, offset)] = lambda: loop.call_soon_threadsafe(event.set)
        if offset not in table:
            await asyncio.wait_for(event.wait(), 30)
        return table[offset]

    def stop(self) -> None:
        for process in (self.worker, self.recorder):
            if process is not None:
                process.stop()
        self.vhost.delete()


JOBS_QUEUE = pika_pipeline.JOBS


class FastapiExample:
    """The original in-process FastAPI example under uvicorn."""

    def __init__(self, run_dir: Path) -> None:
        self.port = free_port()
        self.http_url = f"http://127.0.0.1:{self.port}"
        self.server = Process(
            "fastapi-example",
            python(
                "-m",
                "uvicorn",
                "bench.baselines.fastapi_example:app",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
            ),
            {},
            run_dir,
        ).start()
        self.server.wait_url(self.http_url + "/_bench/done")
        self._http = httpx.Client(base_url=self.http_url)

    def done_count(self) -> int:
        return int(self._http.get("/_bench/done").json())

    def stop(self) -> None:
        self._http.close()
        self.server.stop()
