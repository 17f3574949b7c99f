"""Recording replies: jobcast.ledger into the ledger, a batch per transaction, one ack per batch.

This is the hot path of the query side (every job sends it four messages), so it talks to
aio-pika directly: under load FastStream's per-message machinery cost the gateway more CPU
than storing the reply did (py-spy, bench/). The rules stay those of every jobcast consumer:

- a reply is acked only once the transaction that stored it committed, so a crash loses none;
- storing is idempotent per (offset, seq), so a redelivered reply is never shown twice;
- a reply that cannot be stored (not a Reply, or an offset never handed out) is moved to
  jobcast.dead with the reason, so it never stalls the queue;
- while the ledger is down replies wait, unacked, and are retried in place.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import aio_pika
import aio_pika.abc
from aio_pika.exceptions import MessageProcessError
from aiormq.exceptions import AMQPError, ChannelInvalidStateError
from pydantic import ValidationError

from contracts import Reply
from contracts.consuming import Consumer, DeadLetter
from contracts.errors import describe
from contracts.retrying import while_ledger_down
from contracts.topology import LEDGER_QUEUE
from ledger import StoreOutcome
from query.live import ReplyHub

logger = logging.getLogger(__name__)

StoreMany = Callable[[Sequence[Reply]], Awaitable[list[StoreOutcome]]]


@dataclass(frozen=True)
class Recorded:
    """One message of a settled batch and what became of it (for metrics and tracing)."""

    message: aio_pika.abc.AbstractIncomingMessage
    outcome: StoreOutcome | None
    """None: the message was not a Reply and went to jobcast.dead."""


RecordObserver = Callable[[Sequence[Recorded]], None]

_CHANNEL_GONE = (AMQPError, ChannelInvalidStateError, ConnectionError)


class ReplyRecorder(Consumer):
    """Consumes jobcast.ledger on a channel of its own and stores what arrives in batches.

    Whatever arrived while the last batch was being committed goes into the next one: under
    no load a reply is stored alone at once, under load one transaction, one fsync and one
    multiple-ack serve up to `prefetch` replies.
    """

    def __init__(
        self,
        store_many: StoreMany,
        hub: ReplyHub,
        dead_letter: DeadLetter,
        *,
        prefetch: int,
        observe: RecordObserver | None = None,
    ) -> None:
        super().__init__(LEDGER_QUEUE, dead_letter, prefetch=prefetch)
        self._store_many = store_many
        self._hub = hub
        self._observe = observe
        self._pending: list[aio_pika.abc.AbstractIncomingMessage] = []
        self._draining: asyncio.Task[None] | None = None

    async def on_message(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        self._pending.append(message)
        if self._draining is None or self._draining.done():
            # NOTE: tracked like a handler, so stop() lets it store and ack what it took.
            self._draining = asyncio.create_task(self._drain())
            self._handling.add(self._draining)
            self._draining.add_done_callback(self._handling.discard)

    async def _drain(self) -> None:
        # NOTE: one task settles batches strictly in delivery order, so when a batch is acked
        # with one multiple-ack every lower delivery tag of its channel is already settled.
        while self._pending:
            batch = self._pending[: self._prefetch]
            del self._pending[: self._prefetch]
            try:
                recorded = await self._record(batch)
            except Exception:  # a bug, not an outage: hand the batch back, keep consuming
                logger.exception("recording %d replies failed; back to the queue", len(batch))
                await _settle(batch, requeue=True)
                continue
            if self._observe is not None:
                self._observe(recorded)

    async def _record(self, batch: list[aio_pika.abc.AbstractIncomingMessage]) -> list[Recorded]:
        parsed = [_parse(message) for message in batch]
        replies = [item for item in parsed if isinstance(item, Reply)]
        outcomes = iter(await while_ledger_down(self._store_many, replies) if replies else [])
        recorded: list[Recorded] = []
        to_ack: list[aio_pika.abc.AbstractIncomingMessage] = []
        stored: list[int] = []
        for message, item in zip(batch, parsed, strict=True):
            if isinstance(item, str):
                outcome = None
                reason: str | None = item
            else:
                outcome = next(outcomes)
                reason = None
                if outcome is StoreOutcome.UNKNOWN_OFFSET:
                    reason = f"reply for offset {item.offset}, never handed out"
                elif outcome is StoreOutcome.STORED:
                    stored.append(item.offset)
            if reason is None or await self._dead_letter(message, reason):
                to_ack.append(message)
            else:
                # NOTE: the copy was not confirmed: reject this one alone, so RabbitMQ's own
                # dead-lettering (jobcast.ledger has jobcast.dlx) keeps it.
                await _quietly(message.reject(requeue=False))
            recorded.append(Recorded(message, outcome))
        await _settle(to_ack)
        for offset in stored:
            self._hub.notify(offset)
        return recorded


def _parse(message: aio_pika.abc.AbstractIncomingMessage) -> Reply | str:
    """The Reply in `message`, or why it is not one."""
    try:
        return Reply.model_validate_json(message.body)
    except ValidationError as exc:
        return f"invalid reply: {describe(exc)}"


async def _settle(
    messages: Sequence[aio_pika.abc.AbstractIncomingMessage], *, requeue: bool | None = None
) -> None:
    """Ack (or with `requeue`, nack) `messages`: one multiple-ack per channel they came on.

    The messages are in delivery order and every unsettled lower delivery tag of their
    channel is among them. A batch can straddle a reconnect: messages of the lost channel
    cannot be acked any more and need not be (RabbitMQ redelivers them; storing them again
    is a no-op).
    """
    last: dict[int, aio_pika.abc.AbstractIncomingMessage] = {}
    for message in messages:
        try:
            last[id(message.channel)] = message
        except ChannelInvalidStateError:
            continue  # its channel is closed
    for message in last.values():
        if requeue is None:
            await _quietly(message.ack(multiple=True))
        else:
            await _quietly(message.nack(multiple=True, requeue=requeue))


async def _quietly(settling: Awaitable[None]) -> None:
    try:
        await settling
    except _CHANNEL_GONE:
        logger.info("channel lost before a reply was settled; RabbitMQ redelivers it")
    except MessageProcessError:
        pass  # settled already
