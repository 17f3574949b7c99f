"""A TCP proxy on a port of its own in front of the shared broker: a stand-in "node" that a
test can kill (its port closed, every connection through it cut) without touching RabbitMQ."""

import asyncio
import contextlib
from urllib.parse import urlsplit, urlunsplit

from harness.processes import free_port


class NodeProxy:
    """Forwards 127.0.0.1:`port` to `target_host`:`target_port` until `kill()`."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> "NodeProxy":
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        return self

    async def kill(self) -> None:
        """As a node dying: the port refuses, and every open connection is cut at once."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            transport = writer.transport
            transport.abort()  # type: ignore[attr-defined]

    def url(self, amqp_url: str) -> str:
        """`amqp_url` pointed at this proxy."""
        return with_host(amqp_url, f"127.0.0.1:{self.port}")

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            self._writers -= {writer, up_writer}
            for w in (writer, up_writer):
                w.transport.abort()  # type: ignore[attr-defined]


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.transport.abort()  # type: ignore[attr-defined]


def with_host(amqp_url: str, netloc_host: str) -> str:
    """`amqp_url` with its host(s) replaced by `netloc_host` (credentials, vhost kept)."""
    parts = urlsplit(amqp_url)
    userinfo = parts.netloc.rpartition("@")[0]
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{netloc_host}"))


def dead_node() -> str:
    """host:port of a node that refuses every connection (nothing listens there)."""
    return f"127.0.0.1:{free_port()}"
