"""Followers cost nothing when idle and nothing once their client is gone (issue 9, item 4).

The gateway's app runs in this process under a real uvicorn, on the real broker and a SQLite
ledger, so the test can count its followers and its ledger reads; clients are plain sockets,
so a thousand of them are cheap.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from contracts import Reply, ReplyKind
from harness.processes import free_port
from jobcast.gateway import create_app
from jobcast.settings import Settings
from query.results import Results
from tests.support.waiting import eventually

JOB = {"deployment": "followers", "framework": "tests", "fn": "default_fn"}
QUIET_SECONDS = 2.0
"""How long the tests watch a quiet gateway for ledger reads (none may happen)."""


class _InProcessServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the test runner keeps its own signal handlers


@dataclass
class Gateway:
    app: FastAPI
    port: int
    reads: int = 0

    @property
    def results(self) -> Results:
        found: Results = self.app.state.results
        return found

    @property
    def followers(self) -> int:
        return self.results.hub.followers

    async def quiet_job(self) -> int:
        """A job no worker takes: it never gets a reply unless the test stores one."""
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.port}") as http:
            offset: int = (await http.post("/schedule", json=JOB)).json()["offset"]
        return offset


@pytest.fixture
async def gateway(amqp_url: str, tmp_path: Path) -> AsyncIterator[Gateway]:
    settings = Settings(
        amqp_url=amqp_url,
        database_url=f"sqlite:///{tmp_path / 'ledger.db'}",
        port=free_port(),
        grace_seconds=1,
    )
    app = create_app(settings)
    found = Gateway(app, settings.port)
    ledger = app.state.ledger
    reads = {name: getattr(ledger, name) for name in ("replies", "job")}

    def counted(name: str) -> Any:
        async def read(*args: Any, **kwargs: Any) -> Any:
            found.reads += 1
            return await reads[name](*args, **kwargs)

        return read

    for name in reads:
        setattr(ledger, name, counted(name))
    server = _InProcessServer(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=settings.port,
            log_config=None,
            backlog=4096,
            timeout_graceful_shutdown=2,  # streams a failed test left open are cut
        )
    )
    serving = asyncio.create_task(server.serve())
    await eventually(lambda: _value(server.started), what="gateway started", timeout=30)
    try:
        yield found
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, 30)


async def _value(value: Any) -> Any:
    return value


class Client:
    """One HTTP client on a socket of its own, which it can drop like a closed browser tab."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> "Client":
        """Send GET `path` and read the answer's head (a stream's head comes at once)."""
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.writer.write(f"GET {path} HTTP/1.1\r\nhost: jobcast\r\n\r\n".encode())
        await self.writer.drain()
        return self

    async def head(self) -> bytes:
        assert self.reader is not None
        return await self.reader.readuntil(b"\r\n\r\n")

    async def read_until(self, marker: bytes) -> bytes:
        assert self.reader is not None
        return await self.reader.readuntil(marker)

    async def drop(self) -> None:
        assert self.writer is not None
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


async def open_streams(gateway: Gateway, offset: int, count: int) -> list[Client]:
    clients = await asyncio.gather(
        *(Client(gateway.port).get(f"/messages/{offset}/stream") for _ in range(count))
    )
    heads = await asyncio.gather(*(client.head() for client in clients))
    assert all(head.startswith(b"HTTP/1.1 200") for head in heads)
    await eventually(
        lambda: _value(gateway.followers), until=lambda n: n == count, what="all following"
    )
    return list(clients)


async def reads_while_quiet(gateway: Gateway) -> int:
    """Ledger reads during QUIET_SECONDS in which nothing is stored."""
    before = gateway.reads
    await asyncio.sleep(QUIET_SECONDS)  # an observation window, not a wait for something
    return gateway.reads - before


async def test_dropped_streams_end_their_followers_and_read_nothing_more(gateway: Gateway):
    offset = await gateway.quiet_job()
    clients = await open_streams(gateway, offset, 200)

    await asyncio.gather(*(client.drop() for client in clients))

    await eventually(
        lambda: _value(gateway.followers),
        until=lambda n: n == 0,
        timeout=5,
        what="every follower gone with its client",
    )
    assert await reads_while_quiet(gateway) == 0


async def test_a_thousand_idle_streams_read_nothing_until_a_reply_then_once_each(
    gateway: Gateway,
):
    offset = await gateway.quiet_job()
    clients = await open_streams(gateway, offset, 1000)
    assert await reads_while_quiet(gateway) == 0

    before = gateway.reads
    # what the recorder does with a reply: commit it, then ring the job's followers
    await gateway.results.ledger.store_replies(
        [Reply(offset=offset, seq=0, kind=ReplyKind.RESULT, value="first")]
    )
    gateway.results.hub.notify(offset)
    seen = await asyncio.wait_for(
        asyncio.gather(*(client.read_until(b'"value":"first"') for client in clients)), 30
    )
    assert all(b'"seq":0' in event for event in seen)
    assert gateway.reads - before <= 1000  # one read per follower woken, no more

    await asyncio.gather(*(client.drop() for client in clients))
    await eventually(
        lambda: _value(gateway.followers), until=lambda n: n == 0, timeout=10, what="all gone"
    )


async def test_a_long_poll_whose_client_left_stops_waiting(gateway: Gateway):
    offset = await gateway.quiet_job()
    client = await Client(gateway.port).get(f"/messages/{offset}?wait=60")
    await eventually(lambda: _value(gateway.followers), until=lambda n: n == 1, what="polling")

    await client.drop()

    await eventually(
        lambda: _value(gateway.followers),
        until=lambda n: n == 0,
        timeout=5,
        what="the long poll ended with its client",
    )
