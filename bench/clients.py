"""The bench's clients: submit jobs over AMQP (aio-pika) or HTTP (httpx), as fast as they can."""

import asyncio
import itertools
from collections.abc import Iterable

import aio_pika
import httpx
import orjson

from contracts.topology import DIRECT_REPLY_TO

WINDOW = 256
"""Submissions in flight at once (unconfirmed publishes, or open HTTP requests)."""

HTTP_CONNECTIONS = 8

JOB = {"deployment": "Docker", "framework": "FastAPI", "fn": "default_fn"}


class AmqpSubmitter:
    """Publishes persistent, confirmed messages to one queue; optionally as RPC requests whose
    answers ({"offset": n}) come back on direct reply-to."""

    def __init__(self, url: str, queue: str, *, rpc: bool) -> None:
        self.url = url
        self.queue = queue
        self.rpc = rpc
        self.answers: dict[str, int] = {}
        self.answered = asyncio.Event()
        """Set on every answer (cleared by whoever waits for the next)."""
        self._counter = itertools.count()
        self._connection: aio_pika.abc.AbstractConnection | None = None
        self._channel: aio_pika.abc.AbstractChannel | None = None

    async def open(self) -> None:
        self._connection = await aio_pika.connect(self.url)
        self._channel = await self._connection.channel(publisher_confirms=True)
        if self.rpc:
            await self._channel.channel.basic_consume(DIRECT_REPLY_TO, self._on_answer, no_ack=True)

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()

    async def _on_answer(self, message: object) -> None:
        correlation_id = message.header.properties.correlation_id  # type: ignore[attr-defined]
        offset = orjson.loads(message.body)["offset"]  # type: ignore[attr-defined]
        self.answers[correlation_id] = offset
        self.answered.set()

    async def publish(self, body: bytes) -> str:
        """Publish one message and return its correlation id once the broker confirmed it."""
        assert self._channel is not None
        correlation_id = str(next(self._counter))
        await self._channel.default_exchange.publish(
            aio_pika.Message(
                body,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                content_type="application/json",
                correlation_id=correlation_id,
                reply_to=DIRECT_REPLY_TO if self.rpc else None,
            ),
            routing_key=self.queue,
        )
        return correlation_id

    async def offset_of(self, correlation_id: str, timeout: float = 10) -> int:
        """The offset answered to the request `correlation_id` (RPC only)."""
        async with asyncio.timeout(timeout):
            while correlation_id not in self.answers:
                self.answered.clear()
                await self.answered.wait()
        return self.answers[correlation_id]

    async def publish_all(self, bodies: Iterable[bytes]) -> None:
        await _windowed(self.publish(body) for body in bodies)


async def post_all(http: httpx.AsyncClient, count: int) -> list[int]:
    """POST /schedule `count` times, WINDOW at a time; the offsets answered."""
    offsets: list[int] = []

    async def post() -> None:
        response = await http.post("/schedule", json=JOB)
        response.raise_for_status()
        offsets.append(response.json()["offset"])

    await _windowed(post() for _ in range(count))
    return offsets


def http_client(base_url: str) -> httpx.AsyncClient:
    limits = httpx.Limits(
        max_connections=HTTP_CONNECTIONS, max_keepalive_connections=HTTP_CONNECTIONS
    )
    return httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60)


async def _windowed(coros: Iterable[object]) -> None:
    """Await the coroutines with at most WINDOW running at once."""
    slots = asyncio.Semaphore(WINDOW)
    tasks: list[asyncio.Task[object]] = []

    async def run(coro: object) -> object:
        try:
            return await coro  # type: ignore[misc]
        finally:
            slots.release()

    for coro in coros:
        await slots.acquire()
        tasks.append(asyncio.ensure_future(run(coro)))
    await asyncio.gather(*tasks)
