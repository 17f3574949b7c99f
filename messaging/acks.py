"""Acking deliveries together: one basic.ack(multiple) for a run of handled messages.

A consumer that handles many messages at once (a worker's jobs, the gateway's submissions)
would otherwise send one ack per message, and RabbitMQ settles each in its queue's log alone.
`Acks` gathers the acks asked for in one turn of the event loop and, per channel, sends the
run of them that starts at the oldest unsettled delivery as one multiple-ack. An ack is never
held back behind a delivery still being handled: one that does not join the run goes alone,
in the same turn. A multiple-ack covers every unsettled lower delivery tag of its channel, so
a run never reaches past a delivery that is not settled (or whose settling this tracker did
not see: it stays in the way, and the acks after it go alone).
"""

import asyncio
import bisect
from dataclasses import dataclass, field

import aio_pika.abc
import aiormq.abc

Message = aio_pika.abc.AbstractIncomingMessage


@dataclass
class _Channel:
    """The deliveries of one channel this tracker saw and has not seen settled."""

    channel: aiormq.abc.AbstractChannel
    tags: list[int] = field(default_factory=list)
    """Unsettled delivery tags, lowest first."""
    seen_through: int = 0
    """Every tag up to this one was seen delivered (a channel's tags count up from 1): a run
    stops here, so a multiple-ack never settles a delivery not yet seen."""
    seen_ahead: set[int] = field(default_factory=set)
    messages: dict[int, Message] = field(default_factory=dict)
    asked: dict[int, asyncio.Future[None]] = field(default_factory=dict)
    """Tags whose ack was asked for this turn, with what their askers wait on."""


class Acks:
    """The acks of one consumer's deliveries, sent once per turn of the event loop."""

    def __init__(self) -> None:
        self._channels: dict[int, _Channel] = {}
        self._flushing: asyncio.Task[None] | None = None
        self.frames = 0
        """basic.ack frames sent (for tests and the bench)."""

    def delivered(self, message: Message) -> None:
        """Note a delivery (before it is handled): until settled it bounds every run."""
        tag = message.delivery_tag
        if tag is None:  # no_ack: nothing to settle
            return
        state = self._state(message)
        if state is None:
            return
        bisect.insort(state.tags, tag)
        state.messages[tag] = message
        state.seen_ahead.add(tag)
        while state.seen_through + 1 in state.seen_ahead:
            state.seen_through += 1
            state.seen_ahead.discard(state.seen_through)

    async def ack(self, message: Message) -> None:
        """Ack `message` with the others acked this turn; returns once the ack is sent
        (raises what sending it raised, a closed channel say)."""
        state = self._state(message)
        tag = message.delivery_tag
        if state is None or tag is None or tag not in state.messages:
            await message.ack()  # not seen delivered (or its channel is gone): alone
            self.frames += 1
            return
        done = asyncio.get_running_loop().create_future()
        state.asked[tag] = done
        if self._flushing is None or self._flushing.done():
            # NOTE: a task, so it runs after every handler already woken in this turn.
            self._flushing = asyncio.create_task(self._flush())
        await done

    def _state(self, message: Message) -> _Channel | None:
        try:
            channel = message.channel
        except aiormq.exceptions.ChannelInvalidStateError:
            return None
        state = self._channels.get(id(channel))
        if state is None or state.channel is not channel:
            for key in [k for k, s in self._channels.items() if s.channel.is_closed]:
                del self._channels[key]  # lost with their connection: RabbitMQ requeued them
            state = self._channels[id(channel)] = _Channel(channel)
        return state

    async def _flush(self) -> None:
        # NOTE: until nothing is asked: an ack asked while this task sends others finds it
        # running and starts no task of its own.
        while any(state.asked for state in self._channels.values()):
            for state in list(self._channels.values()):
                if state.asked:
                    await self._flush_channel(state)

    async def _flush_channel(self, state: _Channel) -> None:
        asked, state.asked = state.asked, {}
        # the run: from the oldest unsettled delivery, every one settled or asked to be acked
        run = 0
        for tag in state.tags:
            if tag > state.seen_through:
                break
            if tag in asked or state.messages[tag].processed:  # or settled alone (a nack)
                run += 1
            else:
                break
        last_asked = max((tag for tag in state.tags[:run] if tag in asked), default=None)
        sends: list[tuple[Message, bool, list[int]]] = []
        if last_asked is not None:
            covered = [tag for tag in state.tags[:run] if tag <= last_asked and tag in asked]
            sends.append((state.messages[last_asked], len(covered) > 1, covered))
            self._forget(state, [tag for tag in state.tags[:run] if tag <= last_asked])
        for tag in sorted(tag for tag in asked if tag in state.messages):
            sends.append((state.messages[tag], False, [tag]))  # not in the run: alone
            self._forget(state, [tag])
        for message, multiple, covered in sends:
            try:
                await message.ack(multiple=multiple)
            except Exception as exc:  # the channel is gone: each asker hears it
                for tag in covered:
                    _settle(asked[tag], exc)
                continue
            self.frames += 1
            for tag in covered:
                _settle(asked[tag])

    @staticmethod
    def _forget(state: _Channel, tags: list[int]) -> None:
        for tag in tags:
            del state.messages[tag]
        gone = set(tags)
        state.tags = [tag for tag in state.tags if tag not in gone]

    def forget(self, message: Message) -> None:
        """A delivery whose handling ended: if it was settled (by any means), stop tracking
        it; if not, it keeps bounding the runs (a multiple-ack must not settle it)."""
        tag = message.delivery_tag
        if tag is None or not message.processed:
            return
        for state in self._channels.values():
            if state.messages.get(tag) is message and tag not in state.asked:
                self._forget(state, [tag])
                return


def _settle(future: asyncio.Future[None], exc: BaseException | None = None) -> None:
    if future.done():
        return
    if exc is None:
        future.set_result(None)
    else:
        future.set_exception(exc)
