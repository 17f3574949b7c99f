"""Recording replies: jobcast.ledger into the ledger, a batch per transaction, one ack per batch.

This is the hot path of the query side (every job sends it four messages), so it talks to
aio-pika directly: under load FastStream's per-message machinery cost the gateway more CPU
than storing the reply did (py-spy, bench/). The rules stay those of every jobcast consumer:

- a reply is acked only once the transaction that stored it committed, so a crash loses none;
- storing is idempotent per (offset, seq), so a redelivered reply is never shown twice;
- only replies a worker signed are stored (contracts/signing.py), and only when they can be
  true of their job (ledger/rules.py): their routing key names their offset, nothing after the
  final reply, no second final, nothing far beyond the first missing seq;
- a message that cannot be stored (too large, unsigned, not a Reply, refused by those rules or
  by the database) is moved to jobcast.dead with the reason, alone: never the batch, the task
  or the queue;
- a `progress` reply is no step: the ledger keeps only each job's latest (ledger/progress.py)
  and drops old news quietly (acked, not dead-lettered: several gateways record out of order);
- while the ledger is down replies wait, unacked, and are retried in place; a recorder that
  has not settled a batch for `stall_seconds` says so (`stalled`), and /ready turns red.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import aio_pika
import aio_pika.abc
from aio_pika.exceptions import MessageProcessError
from pydantic import ValidationError

from contracts import Reply
from contracts.errors import DeadLetterReason, LedgerRejectedError, describe
from contracts.headers import HEADER_SIGNATURE
from contracts.messages import MAX_REPLY_BYTES
from contracts.signing import Signer
from contracts.topology import LEDGER_QUEUE, reply_key
from ledger import StoreOutcome
from ledger.outages import while_ledger_down
from messaging.connection import BROKER_FAILURES
from messaging.consumer import Consumer, DeadLetter
from query.wakeups import ReplyHub

logger = logging.getLogger(__name__)

StoreMany = Callable[[Sequence[Reply]], Awaitable[list[StoreOutcome]]]


@dataclass(frozen=True)
class Recorded:
    """One message of a settled batch and what became of it (for metrics and tracing)."""

    message: aio_pika.abc.AbstractIncomingMessage
    outcome: StoreOutcome | None
    """None: the message was no storable Reply and went to jobcast.dead."""


RecordObserver = Callable[[Sequence[Recorded]], None]


@dataclass(frozen=True)
class Refused:
    """Why a message cannot be stored: its dead-letter reason, and the detail in words."""

    reason: DeadLetterReason
    detail: str


STALL_SECONDS = 30.0
"""A batch unsettled this long (the ledger down, say) makes the recorder report `stalled`."""


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
        signer: Signer,
        *,
        prefetch: int,
        observe: RecordObserver | None = None,
        stall_seconds: float = STALL_SECONDS,
    ) -> None:
        super().__init__(LEDGER_QUEUE, dead_letter, prefetch=prefetch)
        self._store_many = store_many
        self._hub = hub
        self._signer = signer
        self._observe = observe
        self._stall_seconds = stall_seconds
        self._pending: list[aio_pika.abc.AbstractIncomingMessage] = []
        self._draining: asyncio.Task[None] | None = None
        self._busy_since: float | None = None

    @property
    def stalled(self) -> bool:
        """True while a batch has waited longer than `stall_seconds` to be settled."""
        since = self._busy_since
        return since is not None and time.monotonic() - since > self._stall_seconds

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
            self._busy_since = time.monotonic()
            try:
                recorded = await self._record(batch)
            except Exception:  # a bug of ours in settling, not a bad reply: hand them back
                logger.exception("settling %d replies failed; back to the queue", len(batch))
                await _settle(batch, requeue=True)
                continue
            finally:
                self._busy_since = None
            if self._observe is not None:
                self._observe(recorded)

    async def _record(self, batch: list[aio_pika.abc.AbstractIncomingMessage]) -> list[Recorded]:
        parsed = [self._parse(message) for message in batch]
        outcomes = iter(await self._store([item for item in parsed if isinstance(item, Reply)]))
        recorded: list[Recorded] = []
        to_ack: list[aio_pika.abc.AbstractIncomingMessage] = []
        stored: list[int] = []
        for message, item in zip(batch, parsed, strict=True):
            outcome: StoreOutcome | None = None
            refused = item if isinstance(item, Refused) else None
            if isinstance(item, Reply):
                stored_or_why = next(outcomes)
                if isinstance(stored_or_why, Refused):
                    refused = stored_or_why
                else:
                    outcome = stored_or_why
                    if outcome.refused:
                        refused = _by_the_rules(outcome, item)
                    elif outcome is not StoreOutcome.STALE:  # old progress news: nothing new
                        # NOTE: a duplicate rings too: it may be the redelivery of a reply
                        # whose commit went through while its ack (and ring) did not.
                        stored.append(item.offset)
            if refused is None or await self._dead_letter(message, refused.reason, refused.detail):
                to_ack.append(message)
            else:
                # NOTE: the copy was not confirmed: reject this one alone, so RabbitMQ's own
                # dead-lettering (jobcast.ledger has jobcast.dlx) keeps it.
                await _quietly(message.reject(requeue=False))
            recorded.append(Recorded(message, outcome))
        # NOTE: followers first: what they read is committed, and the ack need not go out
        # before a waiting long poll or stream is woken (in this same turn of the loop).
        for offset in stored:
            self._hub.notify(offset)
        await _settle(to_ack)
        return recorded

    async def _store(self, replies: list[Reply]) -> list[StoreOutcome | Refused]:
        """Store `replies` in one transaction; if the database refuses one, each alone, so that
        one fails alone (its outcome is then why)."""
        if not replies:
            return []
        try:
            return list(await while_ledger_down(self._store_many, replies))
        except Exception as exc:  # LedgerRejectedError, or a write error we did not foresee
            if len(replies) == 1:
                return [_refusal(exc, replies[0])]
        alone: list[StoreOutcome | Refused] = []
        for reply in replies:
            try:
                alone.extend(await while_ledger_down(self._store_many, [reply]))
            except Exception as exc:
                alone.append(_refusal(exc, reply))
        return alone

    def _parse(self, message: aio_pika.abc.AbstractIncomingMessage) -> Reply | Refused:
        """The Reply in `message`, or why it cannot be stored."""
        size = len(message.body)
        if size > MAX_REPLY_BYTES:
            why = f"too large: a reply of {size} bytes, over {MAX_REPLY_BYTES}"
            return Refused(DeadLetterReason.TOO_LARGE, why)
        signature = (message.headers or {}).get(HEADER_SIGNATURE)
        if not self._signer.verify(message.body, signature):
            which = "no" if signature is None else "a wrong"
            why = f"unsigned reply: {which} {HEADER_SIGNATURE} (only workers write results)"
            return Refused(DeadLetterReason.UNSIGNED, why)
        try:
            reply = Reply.model_validate_json(message.body)
        except ValidationError as exc:
            return Refused(DeadLetterReason.INVALID_REPLY, f"invalid reply: {describe(exc)}")
        if message.routing_key != reply_key(reply.offset):
            why = f"misrouted reply: routing key {message.routing_key!r} for offset {reply.offset}"
            return Refused(DeadLetterReason.MISROUTED, why)
        return reply


def _by_the_rules(outcome: StoreOutcome, reply: Reply) -> Refused:
    """A reply the ledger's rules refused (ledger/rules.py), as a dead letter."""
    if outcome is StoreOutcome.UNKNOWN_OFFSET:
        return Refused(DeadLetterReason.UNKNOWN_OFFSET, outcome.reason(reply))
    return Refused(DeadLetterReason.REFUSED_REPLY, outcome.reason(reply))


def _refusal(exc: Exception, reply: Reply) -> Refused:
    if not isinstance(exc, LedgerRejectedError):
        logger.exception("storing offset=%s seq=%s failed", reply.offset, reply.seq)
    why = f"ledger refused: seq {reply.seq} of offset {reply.offset}: {exc}"
    return Refused(DeadLetterReason.LEDGER_REFUSED, why)


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
        except BROKER_FAILURES:
            continue  # its channel is closed (ChannelInvalidStateError)
    for message in last.values():
        if requeue is None:
            await _quietly(message.ack(multiple=True))
        else:
            await _quietly(message.nack(multiple=True, requeue=requeue))


async def _quietly(settling: Awaitable[None]) -> None:
    try:
        await settling
    except BROKER_FAILURES:
        logger.info("channel lost before a reply was settled; RabbitMQ redelivers it")
    except MessageProcessError:
        pass  # settled already
