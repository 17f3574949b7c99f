"""FastStream's idiomatic pipeline: a RabbitBroker subscriber per role, publishes with
`persist=True` on its publisher-confirmed channel (FastStream's default), durable queues,
classic or quorum (BENCH_PEER_QUEUE_TYPE). The worker subscribes to the jobs queue, publishes
result1..3 and done to one reply queue, each confirmed before the next, and FastStream acks the
job once the handler returns. The client subscribes to the reply queue.

    BENCH_PEER_AMQP_URL=... python -m bench.peers.faststream_peer worker
    BENCH_PEER_AMQP_URL=... python -m bench.peers.faststream_peer w1|w2 N
"""

import asyncio
import os
import sys
import time
from typing import Any

import uvloop
from faststream.rabbit import QueueType, RabbitBroker, RabbitQueue

from bench.peers.timing import JOB, STEPS, WINDOW, Latencies, Stopwatch, Throughput, emit

URL = os.environ.get("BENCH_PEER_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
QUEUE_TYPE = QueueType(os.environ.get("BENCH_PEER_QUEUE_TYPE", "classic"))
JOBS = RabbitQueue("peer.jobs", queue_type=QUEUE_TYPE, durable=True)
RESULTS = RabbitQueue("peer.results", queue_type=QUEUE_TYPE, durable=True)


async def worker() -> None:
    broker = RabbitBroker(URL, logger=None)

    @broker.subscriber(JOBS)
    async def on_job(job: dict[str, Any]) -> None:
        for seq, value in enumerate((*STEPS, "done")):
            if seq < len(STEPS):
                await asyncio.sleep(0)
            await broker.publish(
                {"id": job["id"], "seq": seq, "value": value}, queue=RESULTS, persist=True
            )

    await broker.start()
    print("ready", flush=True)
    await asyncio.Future()


class Client:
    """Publishes jobs and follows their results on the one reply queue."""

    def __init__(self) -> None:
        self.broker = RabbitBroker(URL, logger=None)
        self.results_seen = 0
        self.done = 0
        self.firsts: dict[int, asyncio.Event] = {}
        self.dones: dict[int, asyncio.Event] = {}
        self.all_done = asyncio.Event()
        self.target = 0

        @self.broker.subscriber(RESULTS)
        async def on_result(result: dict[str, Any]) -> None:
            self.results_seen += 1
            waiters = self.dones if result["value"] == "done" else self.firsts
            event = waiters.pop(result["id"], None)
            if event is not None:
                event.set()
            if result["value"] == "done":
                self.done += 1
                if self.done >= self.target:
                    self.all_done.set()

    async def submit(self, job_id: int) -> None:
        await self.broker.publish({**JOB, "id": job_id}, queue=JOBS, persist=True)

    async def w1(self, jobs: int, first_id: int) -> Throughput:
        self.target = self.done + jobs
        self.all_done.clear()
        seen_before = self.results_seen
        clock = Stopwatch()
        slots = asyncio.Semaphore(WINDOW)

        async def one(job_id: int) -> None:
            async with slots:
                await self.submit(job_id)

        await asyncio.gather(*(one(first_id + i) for i in range(jobs)))
        await asyncio.wait_for(self.all_done.wait(), 120 + jobs / 20)
        return Throughput(jobs, clock.elapsed(), self.results_seen - seen_before, clock.cpu_used())

    async def w2(self, jobs: int, first_id: int) -> Latencies:
        first: list[float] = []
        done: list[float] = []
        clock = Stopwatch()
        for job_id in range(first_id, first_id + jobs):
            seen_first, seen_done = asyncio.Event(), asyncio.Event()
            self.firsts[job_id], self.dones[job_id] = seen_first, seen_done
            self.target = self.done + 1
            began = time.perf_counter()
            await self.submit(job_id)
            await asyncio.wait_for(seen_first.wait(), 30)
            first.append(time.perf_counter() - began)
            await asyncio.wait_for(seen_done.wait(), 30)
            done.append(time.perf_counter() - began)
        return Latencies(first, done, clock.cpu_used())


async def client(mode: str, jobs: int) -> None:
    peer = Client()
    await peer.broker.start()
    try:
        await peer.w1(1, 0)  # warm-up: connections, queues
        emit(await (peer.w1(jobs, 1) if mode == "w1" else peer.w2(jobs, 1)))
    finally:
        await peer.broker.stop()


def main() -> None:
    if sys.argv[1] == "worker":
        uvloop.run(worker())
    else:
        uvloop.run(client(sys.argv[1], int(sys.argv[2])))


if __name__ == "__main__":
    main()
