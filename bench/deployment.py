"""A jobcast deployment on a PostgreSQL ledger for the scale-out benches (bench.scaling,
bench.cluster): a throwaway database, gateways and workers as real processes, and W1's
throughput measured from the ledger; and the command line both share."""

import argparse
import asyncio
import os
import sys
import time
import uuid
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import orjson
import uvloop

from bench.clients import JOB, AmqpSubmitter
from contracts.topology import SCHEDULE_QUEUE
from harness.processes import JobcastProcess, free_port

ADMIN_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
"""A PostgreSQL URL allowed to create databases (`--postgres` overrides it)."""

DONE = "SELECT count(*) FROM jobcast_jobs WHERE state = 'done'"

Figures = dict[str, list[float]]
"""Jobs/s of each configuration, one figure per repetition."""

S = TypeVar("S")


class Deployment:
    """Gateways and workers of one jobcast sharing a throwaway PostgreSQL database; each
    process may be given its own broker URL (a node of a cluster, in its own order)."""

    def __init__(self, run_dir: Path, admin_url: str, label: str, **settings: str) -> None:
        self.run_dir = run_dir
        self.admin_url = admin_url
        self.label = label
        self.database = f"jobcast_bench_{uuid.uuid4().hex[:10]}"
        database_url = urlunsplit(urlsplit(admin_url)._replace(path="/" + self.database))
        self.env = {
            "JOBCAST_DATABASE_URL": database_url,
            "JOBCAST_STEP_SECONDS": "0",
            **{f"JOBCAST_{key.upper()}": value for key, value in settings.items()},
        }
        self.processes: list[JobcastProcess] = []
        self._created = False
        self._reader: asyncpg.Connection | None = None

    async def __aenter__(self) -> "Deployment":
        await self._admin(f'CREATE DATABASE "{self.database}"')
        self._created = True
        self._reader = await asyncpg.connect(self.env["JOBCAST_DATABASE_URL"])
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._reader is not None:
            await self._reader.close()
        for process in reversed(self.processes):
            await asyncio.to_thread(process.stop)
        if self._created:
            await self._admin(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')

    async def start_gateway(self, amqp_url: str) -> None:
        env = {**self.env, "JOBCAST_AMQP_URL": amqp_url, "JOBCAST_PORT": str(free_port())}
        gateway = self._process("gateway", env, "gw")
        await asyncio.to_thread(gateway.start().wait_http, "/ready", 60)

    async def start_worker(self, amqp_url: str, **settings: str) -> None:
        env = {
            **self.env,
            "JOBCAST_AMQP_URL": amqp_url,
            **{f"JOBCAST_{key.upper()}": value for key, value in settings.items()},
        }
        worker = self._process("worker", env, "w")
        await asyncio.to_thread(worker.start().wait_log, "worker consuming", 60)

    async def done_count(self) -> int:
        assert self._reader is not None, "use the deployment as `async with`"
        return int(await self._reader.fetchval(DONE))

    async def throughput(self, submit_url: str, jobs: int) -> float:
        """W1: jobs/s from the first AMQP submission (RPC on jobcast.schedule, at `submit_url`)
        until `jobs` more are done in the ledger."""
        client = AmqpSubmitter(submit_url, SCHEDULE_QUEUE.name, rpc=True)
        await client.open()
        body = orjson.dumps(JOB)
        try:
            base = await self.done_count()
            began = time.perf_counter()
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(client.publish_all(body for _ in range(jobs)))
                deadline = began + 120 + jobs / 20
                while await self.done_count() < base + jobs:
                    if time.perf_counter() > deadline:
                        raise TimeoutError(f"{self.label}: {jobs} jobs not done in time")
                    await asyncio.sleep(0.02)
            return jobs / (time.perf_counter() - began)
        finally:
            await client.close()

    def _process(self, command: str, env: dict[str, str], tag: str) -> JobcastProcess:
        process = JobcastProcess(
            command, env, self.run_dir, f"{self.label}-{tag}{len(self.processes)}"
        )
        self.processes.append(process)
        return process

    async def _admin(self, statement: str) -> None:
        admin = await asyncpg.connect(self.admin_url)
        try:
            await admin.execute(statement)
        finally:
            await admin.close()


def scale_out_main(
    prog: str,
    description: str | None,
    sizes: Mapping[str, S],
    run: Callable[[S, str], Coroutine[Any, Any, Figures]],
    render: Callable[[S, Figures], str],
    results: Path,
) -> None:
    """A scale-out bench's command line (`--size`, `--postgres`, `--out`): `run` it at that
    size, print the table `render` makes of its figures and write it to `--out`."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--size", choices=sorted(sizes), default="full")
    parser.add_argument("--postgres", default=ADMIN_URL, help="a URL that may create databases")
    parser.add_argument("--out", type=Path, default=results)
    args = parser.parse_args()
    chosen = sizes[args.size]
    figures = uvloop.run(run(chosen, args.postgres))
    table = render(chosen, figures)
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table)


def log(text: str) -> None:
    """Progress on stderr, so that stdout is the table alone."""
    print(text, file=sys.stderr, flush=True)
