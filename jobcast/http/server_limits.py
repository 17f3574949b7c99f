"""Limits uvicorn does not set on its own: request-head size, head-read time, open connections.

uvicorn's httptools protocol holds a connection that never finishes its request head forever
(its keep-alive timer runs only between requests), accepts a head of any size (16 MB went
through, and stayed in memory while it arrived), and its `limit_concurrency` answers a plain-text
503. Here each HTTP connection of a jobcast process (the gateway, a worker's ops port):

- must complete each request head within `JOBCAST_HTTP_HEADER_TIMEOUT_SECONDS` of opening the
  connection or of starting the request, or it is closed (no answer: nothing was asked yet);
- may send a head (request line and headers) of at most `JOBCAST_HTTP_MAX_HEADER_BYTES`; a
  larger one gets 431 and the connection is closed, as soon as the limit is passed;
- beyond `JOBCAST_HTTP_MAX_CONNECTIONS` open connections, a request gets 503 with a JSON
  `detail`, `Retry-After: 1` and `Connection: close`.
"""

import asyncio
import logging
from typing import Any, ClassVar

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from jobcast.settings import Settings

logger = logging.getLogger(__name__)

FILES_PER_CONNECTION_LIMIT = 2
"""Connections get at most 1/2 of the open-file limit: the rest is for connections that are
being refused, the broker, the ledger and logs."""


class HeadTooLargeError(Exception):
    """A request head passed the size limit (raised inside the parser to stop it)."""


def server_options(settings: Settings) -> dict[str, Any]:
    """`uvicorn.Config` arguments that apply jobcast's HTTP limits from `settings` (this raises
    the process's open-file limit first, and keeps the connection limit below it)."""
    open_files = raise_open_files_limit()
    connections = min(settings.http_max_connections, open_files // FILES_PER_CONNECTION_LIMIT)
    if connections < settings.http_max_connections:
        logger.warning(
            "JOBCAST_HTTP_MAX_CONNECTIONS=%s lowered to %s: the process may open %s files",
            settings.http_max_connections,
            connections,
            open_files,
        )
    limited = type(
        "LimitedHttpProtocol",
        (LimitedHttpProtocol,),
        {
            "max_head_bytes": settings.http_max_header_bytes,
            "head_timeout": settings.http_header_timeout_seconds,
            "max_connections": connections,
        },
    )
    return {"http": limited}


def raise_open_files_limit() -> int:
    """Raise this process's soft RLIMIT_NOFILE to its hard limit; the soft limit now in force."""
    try:
        import resource
    except ImportError:  # not on Unix: nothing to raise, and no number to keep below
        return 2**31
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft == hard:
        return soft if soft != resource.RLIM_INFINITY else 2**31
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError):  # e.g. macOS caps it below the hard limit it reports
        return soft
    return hard


class LimitedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a head-size, a head-time and a connection limit.

    NOTE: uvicorn has no public hook for these; this subclass overrides the protocol's parser
    callbacks and asyncio.Protocol methods only (no private attribute), and
    tests/faults/test_http_abuse.py fails if an upgrade changes what they mean.
    """

    max_head_bytes: ClassVar[int] = 16384
    head_timeout: ClassVar[float] = 10.0
    max_connections: ClassVar[int] = 4096
    _warned_full: ClassVar[bool] = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.head_received = 0  # bytes received since the head began, while it is incomplete
        self.head_parsed = 0  # bytes of request line and headers, as the parser reports them
        self.reading_head = True
        self.head_deadline: asyncio.TimerHandle | None = None
        self._arm_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.reading_head:
            self.head_received += len(data)
        super().data_received(data)
        # NOTE: checked after parsing, so bytes of a body that arrived with its head don't
        # count: if the head is still incomplete, everything counted belongs to it.
        if self.reading_head and self.head_received > self.max_head_bytes:
            self._refuse_head()

    # Parser callbacks (httptools calls them while data_received feeds it)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.head_parsed = 0
        self._arm_head_deadline()

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        self._count_head(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        super().on_header(name, value)
        self._count_head(len(name) + len(value) + 4)  # ": " and CRLF

    def on_headers_complete(self) -> None:
        self.reading_head = False
        self._disarm_head_deadline()
        if len(self.connections) > self.max_connections:
            # NOTE: this connection closes after its answer, so its app stays swapped.
            self.app = too_many_connections
            if not LimitedHttpProtocol._warned_full:
                LimitedHttpProtocol._warned_full = True
                logger.warning(
                    "over %s open HTTP connections: new requests get 503", self.max_connections
                )
        else:
            LimitedHttpProtocol._warned_full = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.reading_head = True  # what comes next is the next request's head
        self.head_received = 0

    def send_400_response(self, msg: str) -> None:
        # NOTE: uvicorn answers every parser error with 400; ours (a head too large, raised
        # from a callback) deserves its own status.
        if self.head_parsed > self.max_head_bytes:
            self._refuse_head()
        else:
            super().send_400_response(msg)

    def _count_head(self, size: int) -> None:
        self.head_parsed += size
        if self.head_parsed > self.max_head_bytes:
            raise HeadTooLargeError

    def _refuse_head(self) -> None:
        if self.transport.is_closing():
            return
        if self.cycle is None or self.cycle.response_complete:  # no answer being written
            detail = f"request head larger than {self.max_head_bytes} bytes"
            self.transport.write(_answer(431, "Request Header Fields Too Large", detail))
        self.transport.close()

    def _arm_head_deadline(self) -> None:
        if self.head_deadline is None:
            self.head_deadline = self.loop.call_later(self.head_timeout, self._head_too_slow)

    def _disarm_head_deadline(self) -> None:
        if self.head_deadline is not None:
            self.head_deadline.cancel()
            self.head_deadline = None

    def _head_too_slow(self) -> None:
        self.head_deadline = None
        if not self.transport.is_closing():
            self.transport.close()


def _answer(status: int, phrase: str, detail: str) -> bytes:
    """A whole HTTP/1.1 answer with a JSON `detail` that closes the connection."""
    body = orjson.dumps({"detail": detail})
    return (
        f"HTTP/1.1 {status} {phrase}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    ).encode() + body


async def too_many_connections(scope: Any, receive: Any, send: Any) -> None:
    """The ASGI answer to a request over the connection limit."""
    body = orjson.dumps({"detail": "too many open connections; try again later"})
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", b"1"),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
