"""bench/wire.py counts what crosses the relay however the bytes arrive: the broker operations
per job of bench.cpu rest on it."""

from collections import Counter

from pamqp import commands, frame

from bench.wire import FrameCounter

HEADER = b"AMQP\x00\x00\x09\x01"


def _publish(exchange: str, key: str) -> bytes:
    return bytes(frame.marshal(commands.Basic.Publish(exchange=exchange, routing_key=key), 1))


def _client_stream() -> bytes:
    return b"".join(
        [
            HEADER,
            _publish("", "jobcast.schedule"),
            _publish("jobcast.replies", "reply.41"),
            _publish("jobcast.replies", "reply.42"),
            frame.marshal(commands.Basic.Ack(delivery_tag=9, multiple=True), 1),
        ]
    )


def test_publishes_and_a_multiple_ack_are_counted_with_their_routes() -> None:
    counts: Counter[str] = Counter()
    FrameCounter("client", counts).feed(_client_stream())
    assert counts["client publish"] == 3
    assert counts["client ack"] == 1  # one multiple-ack is one operation
    assert counts["client frames"] == 4
    assert counts["publish to jobcast.replies reply.*"] == 2  # offsets folded into one route
    assert counts["publish to (default) jobcast.schedule"] == 1


def test_a_stream_split_at_every_byte_counts_the_same_as_whole() -> None:
    whole: Counter[str] = Counter()
    FrameCounter("client", whole).feed(_client_stream())
    split: Counter[str] = Counter()
    counter = FrameCounter("client", split)
    for byte in _client_stream():
        counter.feed(bytes([byte]))
    assert split == whole


def test_deliveries_to_reply_addresses_are_named_not_listed_one_by_one() -> None:
    counts: Counter[str] = Counter()
    counter = FrameCounter("broker", counts)
    for n, key in enumerate(["amq.rabbitmq.reply-to.g2dkAA.abc==", "amq.rabbitmq.reply-to.x.y=="]):
        counter.feed(
            frame.marshal(
                commands.Basic.Deliver(
                    consumer_tag="c", delivery_tag=n + 1, exchange="", routing_key=key
                ),
                1,
            )
        )
    counter.feed(
        frame.marshal(
            commands.Basic.Deliver(
                consumer_tag="c",
                delivery_tag=3,
                exchange="",
                routing_key="0b7e4f3a-5c1d-4e2f-9a8b-7c6d5e4f3a2b",
            ),
            1,
        )
    )
    assert counts["broker deliver"] == 3
    assert counts["deliver to (default) (direct reply-to)"] == 2
    assert counts["deliver to (default) (a reply queue)"] == 1


def test_an_incomplete_frame_is_not_counted_until_it_is_whole() -> None:
    counts: Counter[str] = Counter()
    counter = FrameCounter("broker", counts)
    publish_ok = frame.marshal(commands.Basic.Ack(delivery_tag=1), 1)
    counter.feed(publish_ok[:-1])
    assert counts["broker ack"] == 0
    counter.feed(publish_ok[-1:])
    assert counts["broker ack"] == 1
