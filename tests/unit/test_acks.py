"""Acks (messaging/acks.py): acks asked for in one turn go as one multiple-ack where the
deliveries allow, and a multiple-ack never settles a delivery that is still being handled, was
not seen yet, or was settled otherwise; an ack that cannot join a run is not held back."""

import asyncio
from typing import Any, cast

import aiormq
import pytest

from messaging.acks import Acks, Message


class FakeChannel:
    def __init__(self) -> None:
        self.is_closed = False
        self.sent: list[tuple[str, int, bool]] = []
        self.sending = asyncio.Event()


class FakeMessage:
    def __init__(self, channel: FakeChannel, tag: int) -> None:
        self._channel = channel
        self.delivery_tag = tag
        self.processed = False

    @property
    def channel(self) -> FakeChannel:
        if self._channel.is_closed:
            raise aiormq.exceptions.ChannelInvalidStateError("closed")
        return self._channel

    async def ack(self, multiple: bool = False) -> None:
        assert not self.processed, f"tag {self.delivery_tag} settled twice"
        self.channel.sent.append(("ack", self.delivery_tag, multiple))
        self.channel.sending.set()
        await asyncio.sleep(0)  # sending takes a turn of the loop, as a write does
        self.processed = True

    async def nack(self, requeue: bool = True) -> None:
        self.channel.sent.append(("nack", self.delivery_tag, False))
        self.processed = True


def _delivered(acks: Acks, channel: FakeChannel, *tags: int) -> list[Any]:
    messages = [FakeMessage(channel, tag) for tag in tags]
    for message in messages:
        acks.delivered(cast(Message, message))
    return messages


async def _ack_together(acks: Acks, *messages: Any) -> None:
    await asyncio.gather(*(acks.ack(cast(Message, m)) for m in messages))


async def test_acks_of_one_turn_go_as_one_multiple_ack() -> None:
    acks, channel = Acks(), FakeChannel()
    messages = _delivered(acks, channel, 1, 2, 3, 4, 5)
    await _ack_together(acks, *messages)
    assert channel.sent == [("ack", 5, True)]
    assert acks.frames == 1


async def test_a_delivery_still_being_handled_stops_the_run_and_is_never_settled() -> None:
    acks, channel = Acks(), FakeChannel()
    m1, m2, m3, m4 = _delivered(acks, channel, 1, 2, 3, 4)
    await _ack_together(acks, m1, m2, m4)
    # 3 is still running: 1-2 go together, 4 alone (not held back behind 3)
    assert channel.sent == [("ack", 2, True), ("ack", 4, False)]
    await _ack_together(acks, m3)
    assert channel.sent[-1] == ("ack", 3, False)


async def test_a_delivery_not_seen_yet_stops_the_run() -> None:
    acks, channel = Acks(), FakeChannel()
    m1, m2 = _delivered(acks, channel, 1, 2)
    (m4,) = _delivered(acks, channel, 4)  # 3 was delivered, its handler has not started
    await _ack_together(acks, m1, m2, m4)
    assert channel.sent == [("ack", 2, True), ("ack", 4, False)]


async def test_a_delivery_settled_otherwise_joins_the_run_and_is_not_settled_again() -> None:
    acks, channel = Acks(), FakeChannel()
    m1, m2, m3 = _delivered(acks, channel, 1, 2, 3)
    await m2.nack()
    await _ack_together(acks, m1, m3)
    assert channel.sent == [("nack", 2, False), ("ack", 3, True)]


async def test_a_handler_that_ended_unsettled_keeps_bounding_the_runs() -> None:
    acks, channel = Acks(), FakeChannel()
    m1, m2, m3 = _delivered(acks, channel, 1, 2, 3)
    acks.forget(cast(Message, m1))  # ended without settling: a multiple-ack must not take it
    await _ack_together(acks, m2, m3)
    assert ("ack", 3, True) not in channel.sent
    assert channel.sent == [("ack", 2, False), ("ack", 3, False)]


async def test_runs_continue_from_where_the_last_one_ended() -> None:
    acks, channel = Acks(), FakeChannel()
    first = _delivered(acks, channel, 1, 2, 3)
    await _ack_together(acks, *first)
    second = _delivered(acks, channel, 4, 5, 6)
    for message in first:
        acks.forget(cast(Message, message))
    await _ack_together(acks, *second)
    assert channel.sent == [("ack", 3, True), ("ack", 6, True)]


async def test_acks_on_a_lost_channel_raise_to_their_askers() -> None:
    acks, channel = Acks(), FakeChannel()
    messages = _delivered(acks, channel, 1, 2)
    asking = asyncio.gather(*(acks.ack(cast(Message, m)) for m in messages))
    channel.is_closed = True
    with pytest.raises(aiormq.exceptions.ChannelInvalidStateError):
        await asking


async def test_a_new_channel_starts_its_own_runs() -> None:
    acks, old, new = Acks(), FakeChannel(), FakeChannel()
    _delivered(acks, old, 1, 2)  # lost with the connection: RabbitMQ redelivers them
    old.is_closed = True
    messages = _delivered(acks, new, 1, 2)
    await _ack_together(acks, *messages)
    assert new.sent == [("ack", 2, True)]
    assert old.sent == []


async def test_an_ack_asked_while_others_are_being_sent_is_sent_too() -> None:
    acks, channel = Acks(), FakeChannel()
    m1, m2 = _delivered(acks, channel, 1, 2)
    first = asyncio.ensure_future(acks.ack(cast(Message, m1)))
    async with asyncio.timeout(1):
        await channel.sending.wait()  # the flush is sending 1's ack now
        await acks.ack(cast(Message, m2))
        await first
    assert channel.sent == [("ack", 1, False), ("ack", 2, False)]
