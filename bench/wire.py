"""`python -m bench.wire UPSTREAM_PORT`: a TCP relay in front of RabbitMQ that counts the AMQP
0-9-1 operations passing through it, so broker operations per job can be read per system
whatever its client library (the shared broker keeps no per-vhost message statistics: its
management plugin is off and `collect_statistics` is `none`).

It prints its port, then answers each line on stdin with the counts so far as one JSON line.
Counted: every frame, and the basic-class methods by direction (a multiple-ack is one ack).
"""

import asyncio
import json
import re
import struct
import sys
from collections import Counter

import uvloop

HEADER = struct.Struct(">BHI")
BASIC = 60
METHODS = {
    40: "publish",
    50: "return",
    60: "deliver",
    70: "get",
    71: "get-ok",
    80: "ack",
    90: "reject",
    120: "nack",
}
PROTOCOL_HEADER = 8
PUBLISH, DELIVER = 40, 60
_VARYING = re.compile(
    r"amq\.gen-\S+|[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}|\d+"
)


def _shortstr(buffer: bytearray, at: int) -> tuple[str, int]:
    size = buffer[at]
    return buffer[at + 1 : at + 1 + size].decode(errors="replace"), at + 1 + size


def _route(buffer: bytearray, method: int) -> str:
    """`exchange key` of a publish or a delivery, with offsets and ids as `*`."""
    at = HEADER.size + 4
    if method == PUBLISH:
        at += 2  # reserved short
    else:
        _tag, at = _shortstr(buffer, at)
        at += 8 + 1  # delivery tag, redelivered
    exchange, at = _shortstr(buffer, at)
    key, _ = _shortstr(buffer, at)
    if key.startswith("amq.rabbitmq.reply-to"):
        return f"{exchange or '(default)'} (direct reply-to)"
    key = _VARYING.sub("*", key)
    if key == "*":  # a reply queue of its own, named by a uuid
        key = "(a reply queue)"
    return f"{exchange or '(default)'} {key}"


class FrameCounter:
    """Parses one direction's byte stream frame by frame."""

    def __init__(self, direction: str, counts: Counter[str]) -> None:
        self.direction = direction
        self.counts = counts
        self.buffer = bytearray()
        self.skip = PROTOCOL_HEADER if direction == "client" else 0

    def feed(self, data: bytes) -> None:
        self.buffer += data
        if self.skip:
            dropped = min(self.skip, len(self.buffer))
            del self.buffer[:dropped]
            self.skip -= dropped
        while len(self.buffer) >= HEADER.size:
            kind, _channel, size = HEADER.unpack_from(self.buffer)
            end = HEADER.size + size + 1
            if len(self.buffer) < end:
                return
            self.counts[f"{self.direction} frames"] += 1
            if kind == 1 and size >= 4:
                class_id, method_id = struct.unpack_from(">HH", self.buffer, HEADER.size)
                if class_id == BASIC and method_id in METHODS:
                    self.counts[f"{self.direction} {METHODS[method_id]}"] += 1
                    if method_id in (PUBLISH, DELIVER):
                        route = _route(self.buffer, method_id)
                        self.counts[f"{METHODS[method_id]} to {route}"] += 1
            del self.buffer[:end]


async def _pipe(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, counter: FrameCounter
) -> None:
    try:
        while data := await reader.read(65536):
            counter.feed(data)
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def serve(upstream_port: int) -> None:
    counts: Counter[str] = Counter()

    async def relay(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        broker_r, broker_w = await asyncio.open_connection("127.0.0.1", upstream_port)
        await asyncio.gather(
            _pipe(client_r, broker_w, FrameCounter("client", counts)),
            _pipe(broker_r, client_w, FrameCounter("broker", counts)),
        )

    server = await asyncio.start_server(relay, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    while await stdin.readline():
        print(json.dumps(dict(counts)), flush=True)


def main() -> None:
    uvloop.run(serve(int(sys.argv[1])))


if __name__ == "__main__":
    main()
