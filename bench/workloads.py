"""The workloads W1, W2, W3 and the memory run, each timing one system once."""

import asyncio
import contextlib
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aio_pika
import httpx
import orjson

from bench.clients import JOB, AmqpSubmitter, http_client, post_all
from bench.memory import RssSampler
from bench.systems import JOBS_QUEUE, FastapiExample, Jobcast, PikaBaseline
from client.feed import FeedTransport
from contracts import ReplyKind
from contracts.topology import REPLIES_EXCHANGE, REPLY_KEY_ALL

SCHEDULE_QUEUE = "jobcast.schedule"
POLL_SECONDS = 0.02


async def _until_done(done_count: Callable[[], int], target: int, timeout: float) -> None:
    deadline = time.perf_counter() + timeout
    while await asyncio.to_thread(done_count) < target:
        if time.perf_counter() > deadline:
            raise TimeoutError(f"only {done_count()} of {target} jobs done after {timeout}s")
        await asyncio.sleep(POLL_SECONDS)


async def _throughput(
    submit: Awaitable[object], done_count: Callable[[], int], n: int, timeout: float
) -> float:
    """Jobs/s from the first submission until `n` more jobs are done (readable)."""
    base = await asyncio.to_thread(done_count)
    began = time.perf_counter()
    submitting = asyncio.ensure_future(submit)
    await _until_done(done_count, base + n, timeout)
    await submitting
    return n / (time.perf_counter() - began)


def _job_body(offset: int) -> bytes:
    return orjson.dumps({"offset": offset, "request": JOB})


async def w1_amqp_pika(pika: PikaBaseline, n: int, first: int) -> float:
    """W1 on the baseline: publish n jobs to its queue; until the recorder holds every done."""
    client = AmqpSubmitter(pika.amqp_url, JOBS_QUEUE, rpc=False)
    await client.open()
    try:
        bodies = (_job_body(first + i) for i in range(n))
        return await _throughput(client.publish_all(bodies), pika.done_count, n, 60 + n / 50)
    finally:
        await client.close()


async def w1_amqp_jobcast(jobcast: Jobcast, n: int) -> float:
    """W1 on jobcast: JobRequests on jobcast.schedule (RPC); until every done is committed."""
    client = AmqpSubmitter(jobcast.amqp_url, SCHEDULE_QUEUE, rpc=True)
    await client.open()
    body = orjson.dumps(JOB)
    try:
        rate = await _throughput(
            client.publish_all(body for _ in range(n)), jobcast.done_count, n, 60 + n / 50
        )
        # the answers travel behind the jobs; give the last ones a moment
        deadline = time.perf_counter() + 10
        while len(client.answers) < n and time.perf_counter() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        if len(client.answers) != n:
            raise RuntimeError(f"{len(client.answers)} of {n} schedule requests answered")
        return rate
    finally:
        await client.close()


async def w1_http(base_url: str, done_count: Callable[[], int], n: int) -> float:
    """W1 over HTTP: POST /schedule n times; until every job is done."""
    async with http_client(base_url) as http:
        return await _throughput(post_all(http, n), done_count, n, 60 + n / 50)


BATCH_SIZE = 100
BATCH_WINDOW = 4
"""Batches in flight at once: enough to overlap the ledger write of one with the publishes of
another, as a few callers would."""


async def w1_http_batches(base_url: str, done_count: Callable[[], int], n: int) -> float:
    """W1 over HTTP in batches: POST /schedule/batch with BATCH_SIZE jobs each, BATCH_WINDOW
    at a time; until every job is done."""
    sizes = [min(BATCH_SIZE, n - first) for first in range(0, n, BATCH_SIZE)]
    slots = asyncio.Semaphore(BATCH_WINDOW)

    async def post(http: httpx.AsyncClient, size: int) -> None:
        async with slots:
            answer = await http.post("/schedule/batch", json={"jobs": [JOB] * size})
            answer.raise_for_status()
            if len(answer.json()["offsets"]) != size:
                raise RuntimeError(f"a batch of {size} answered {answer.text[:200]}")

    async def post_batches(http: httpx.AsyncClient) -> None:
        await asyncio.gather(*(post(http, size) for size in sizes))

    async with http_client(base_url) as http:
        return await _throughput(post_batches(http), done_count, n, 60 + n / 50)


@dataclass
class Latency:
    """Percentiles in milliseconds."""

    first_p50: float
    first_p99: float
    done_p50: float
    done_p99: float
    first_p95: float = 0.0
    done_p95: float = 0.0


def latency(first: list[float], done: list[float]) -> Latency:
    """Percentiles of submit → first result and submit → done, given in seconds."""

    def pct(values: list[float], q: int) -> float:
        if len(values) == 1:
            return values[0] * 1000
        return statistics.quantiles(values, n=100, method="inclusive")[q - 1] * 1000

    return Latency(
        pct(first, 50),
        pct(first, 99),
        pct(done, 50),
        pct(done, 99),
        first_p95=pct(first, 95),
        done_p95=pct(done, 95),
    )


async def w2_pika(pika: PikaBaseline, jobs: int, first_offset: int) -> Latency:
    """W2 on the baseline: one job at a time, submit → held by the recorder."""
    client = AmqpSubmitter(pika.amqp_url, JOBS_QUEUE, rpc=False)
    await client.open()
    first: list[float] = []
    done: list[float] = []
    try:
        for offset in range(first_offset, first_offset + jobs):
            began = time.perf_counter()
            await client.publish(_job_body(offset))
            first.append(await pika.wait_for("F", offset) - began)
            done.append(await pika.wait_for("D", offset) - began)
    finally:
        await client.close()
    return latency(first, done)


async def w2_jobcast(jobcast: Jobcast, jobs: int) -> Latency:
    """W2 on jobcast: POST /schedule, then long-poll GET /messages until first and done."""
    first: list[float] = []
    done: list[float] = []
    async with http_client(jobcast.http_url) as http:
        for _ in range(jobs):
            began = time.perf_counter()
            offset = (await http.post("/schedule", json=JOB)).json()["offset"]
            seen: list[str] = []
            while not seen or seen[-1] != "done":
                response = await http.get(
                    f"/messages/{offset}", params={"wait": 10, "after": len(seen) - 1}
                )
                now = time.perf_counter()
                if not seen and response.json():
                    first.append(now - began)
                seen = response.json()
            done.append(time.perf_counter() - began)
    return latency(first, done)


async def w1_feed_jobcast(jobcast: Jobcast, n: int) -> float:
    """W1 over AMQP with the client following every job through one feed (`GET /jobs/stream`,
    the jobcast client's `follow_many`): until it has seen every step and done of n jobs."""
    feed = FeedTransport(jobcast.http_url)
    after = [-1]  # count only jobs with a higher offset (the ones measured)
    seen = {"replies": 0, "done": 0}
    progress = asyncio.Event()

    async def follow() -> None:
        async for _cursor, reply in feed.follow_many():
            if reply.offset > after[0]:
                seen["replies"] += 1
                seen["done"] += reply.kind is ReplyKind.DONE
                progress.set()

    follower = asyncio.ensure_future(follow())
    client = AmqpSubmitter(jobcast.amqp_url, SCHEDULE_QUEUE, rpc=True)
    await client.open()
    try:
        await _until_feed_follows(client, seen, progress)
        await _until(lambda: len(client.answers) == seen["warm-ups"], 10)
        after[0] = max(client.answers.values())
        seen["replies"] = seen["done"] = 0
        began = time.perf_counter()
        await client.publish_all(orjson.dumps(JOB) for _ in range(n))
        await _until(lambda: seen["done"] >= n, 60 + n / 50)
        rate = n / (time.perf_counter() - began)
        if seen["replies"] != 4 * n:
            raise RuntimeError(f"the feed showed {seen['replies']} replies of {n} jobs")
        return rate
    finally:
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower
        await client.close()
        await feed.close()


async def _until_feed_follows(
    client: AmqpSubmitter, seen: dict[str, int], progress: asyncio.Event
) -> None:
    """Submit a job at a time until the feed shows one (it is connected from then on)."""
    seen["warm-ups"] = 0
    deadline = time.perf_counter() + 30
    while not seen["done"]:
        if time.perf_counter() > deadline:
            raise TimeoutError("the feed showed no job in 30 s")
        progress.clear()
        await client.publish(orjson.dumps(JOB))
        seen["warm-ups"] += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(progress.wait(), 1)


async def _until(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > deadline:
            raise TimeoutError(f"not reached in {timeout} s")
        await asyncio.sleep(POLL_SECONDS)


async def w2_amqp_jobcast(jobcast: Jobcast, jobs: int) -> Latency:
    """W2 over AMQP: one job at a time, submitted by RPC on jobcast.schedule, followed by one
    subscriber of the reply topic (`reply.*` on jobcast.replies): submit → first reply seen,
    submit → done seen (a reply can arrive before the RPC answer names its offset)."""
    connection = await aio_pika.connect(jobcast.amqp_url)
    seen: dict[int, dict[str, float]] = {}
    arrived = asyncio.Event()

    async def on_reply(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        reply = orjson.loads(message.body)
        marks = seen.setdefault(reply["offset"], {})
        marks.setdefault("first", time.perf_counter())
        if reply["kind"] == ReplyKind.DONE:
            marks["done"] = time.perf_counter()
        arrived.set()

    channel = await connection.channel()
    replies = await channel.declare_queue(exclusive=True, auto_delete=True)
    await replies.bind(REPLIES_EXCHANGE.name, routing_key=REPLY_KEY_ALL)
    await replies.consume(on_reply, no_ack=True)
    client = AmqpSubmitter(jobcast.amqp_url, SCHEDULE_QUEUE, rpc=True)
    await client.open()
    first: list[float] = []
    done: list[float] = []
    try:
        for _ in range(jobs):
            began = time.perf_counter()
            offset = await client.offset_of(await client.publish(orjson.dumps(JOB)))
            async with asyncio.timeout(30):
                while "done" not in seen.get(offset, {}):
                    arrived.clear()
                    await arrived.wait()
            marks = seen.pop(offset)
            first.append(marks["first"] - began)
            done.append(marks["done"] - began)
    finally:
        await client.close()
        await connection.close()
    return latency(first, done)


async def w2_example(example: FastapiExample, jobs: int) -> Latency:
    """W2 on the FastAPI example: POST /schedule, then GET /messages until done (it has no
    long poll: asked again at once)."""
    first: list[float] = []
    done: list[float] = []
    async with http_client(example.http_url) as http:
        for _ in range(jobs):
            began = time.perf_counter()
            offset = (await http.post("/schedule", json=JOB)).json()["offset"]
            seen: list[str] = []
            while not seen or seen[-1] != "done":
                seen = (await http.get(f"/messages/{offset}")).json()
                if seen and len(first) < len(done) + 1:
                    first.append(time.perf_counter() - began)
            done.append(time.perf_counter() - began)
    return latency(first, done)


async def w3_jobcast(jobcast: Jobcast, n: int) -> float:
    """W3: n jobs of 3 x 100 ms steps through the worker jobcast runs now."""
    return await w1_amqp_jobcast(jobcast, n)


@dataclass
class Memory:
    gateway_peak: int
    worker_peak: int
    gateway_growth: int
    worker_growth: int
    rate: float


async def memory_jobcast(jobcast: Jobcast, n: int) -> Memory:
    """A W1-AMQP run of n jobs with the RSS of gateway and worker sampled throughout."""
    assert jobcast.gateway is not None
    assert jobcast.worker is not None
    processes = {"gateway": jobcast.gateway, "worker": jobcast.worker}
    with RssSampler(processes) as rss:
        rate = await w1_amqp_jobcast(jobcast, n)
    return Memory(
        rss.peak("gateway"), rss.peak("worker"), rss.growth("gateway"), rss.growth("worker"), rate
    )


__all__ = ["FastapiExample", "Latency", "Memory"]
