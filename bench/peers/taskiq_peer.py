"""Taskiq on RabbitMQ (taskiq-aio-pika) with its results in Redis (taskiq-redis).

At Taskiq's defaults, which are its safe ones for RabbitMQ: a durable quorum queue, persistent
messages on a publisher-confirmed channel; the worker (`taskiq worker`, two processes by
default) acknowledges a job once its result is saved (`--ack-type when_saved`). Each step
reports its result as the task's progress (`ProgressTracker.set_progress`, kept in Redis beside
the result and overwritten by the next); the client polls Redis as Taskiq's `wait_result` does.

    BENCH_PEER_AMQP_URL=... BENCH_PEER_REDIS_URL=... \\
        taskiq worker bench.peers.taskiq_peer:broker --ack-type when_saved
    python -m bench.peers.taskiq_peer w1|w2 N
"""

import asyncio
import os
import sys
import time
from typing import Any

import uvloop
from taskiq import TaskiqDepends
from taskiq.depends.progress_tracker import ProgressTracker, TaskState
from taskiq.task import AsyncTaskiqTask
from taskiq_aio_pika import AioPikaBroker
from taskiq_redis import RedisAsyncResultBackend

from bench.peers.timing import JOB, STEPS, WINDOW, Latencies, Stopwatch, Throughput, emit

POLL_SECONDS = 0.001
"""How often the client asks Redis (Taskiq's `wait_result` default is 0.2 s)."""

result_backend: RedisAsyncResultBackend[Any] = RedisAsyncResultBackend(
    os.environ.get("BENCH_PEER_REDIS_URL", "redis://127.0.0.1:6379/0"),
    result_ex_time=3600,  # the bench leaves nothing behind in the shared Redis for long
    prefix_str=os.environ.get("BENCH_PEER_REDIS_PREFIX", "bench-peer"),
)
broker = AioPikaBroker(
    os.environ.get("BENCH_PEER_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
).with_result_backend(result_backend)


@broker.task(task_name="bench.pipeline")
async def pipeline(job: dict[str, str], progress: ProgressTracker[str] = TaskiqDepends()) -> str:
    """Three zero-length steps, each result set as the task's progress, then done."""
    for value in STEPS:
        await asyncio.sleep(0)
        await progress.set_progress(TaskState.STARTED, value)
    return "done"


async def w1(jobs: int) -> Throughput:
    """Submit every job (WINDOW in flight) and wait for every result, in order."""
    clock = Stopwatch()
    slots = asyncio.Semaphore(WINDOW)
    tasks: list[asyncio.Task[AsyncTaskiqTask[str]]] = []

    async def submit() -> AsyncTaskiqTask[str]:
        async with slots:
            return await pipeline.kiq(JOB)

    for _ in range(jobs):
        tasks.append(asyncio.ensure_future(submit()))
    seen = 0
    for task in tasks:
        result = await (await task).wait_result(check_interval=POLL_SECONDS, timeout=120)
        if result.is_err:
            raise RuntimeError(f"a job failed: {result.error!r}")
        seen += 1
    return Throughput(jobs, clock.elapsed(), seen, clock.cpu_used())


async def w2(jobs: int) -> Latencies:
    """One job at a time: submit → its first step's progress seen → its result seen."""
    first: list[float] = []
    done: list[float] = []
    clock = Stopwatch()
    for _ in range(jobs):
        began = time.perf_counter()
        task = await pipeline.kiq(JOB)
        seen_first: float | None = None
        deadline = time.monotonic() + 30
        while not await task.is_ready():
            if seen_first is None and await task.get_progress() is not None:
                seen_first = time.perf_counter()
            if time.monotonic() > deadline:
                raise TimeoutError(f"task {task.task_id} not done after 30 s")
            await asyncio.sleep(POLL_SECONDS)
        await task.get_result()
        now = time.perf_counter()
        done.append(now - began)
        first.append((seen_first or now) - began)
    return Latencies(first, done, clock.cpu_used())


async def client(mode: str, jobs: int) -> None:
    await broker.startup()
    try:
        await (await pipeline.kiq(JOB)).wait_result(timeout=60)  # warm-up
        emit(await (w1(jobs) if mode == "w1" else w2(jobs)))
    finally:
        await broker.shutdown()


def main() -> None:
    uvloop.run(client(sys.argv[1], int(sys.argv[2])))


if __name__ == "__main__":
    main()
