"""Consuming one queue with aio-pika directly: the hot paths (jobs, submissions).

FastStream's per-message machinery (decoding, middlewares, dependency injection) cost more CPU
than the work the handlers did (py-spy, bench/), so the queues every job passes through are
consumed here: a channel of their own, a bounded prefetch, each message handled in its own task.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager, nullcontext

import aio_pika
import aio_pika.abc
from pydantic import BaseModel

from contracts.errors import DeadLetterReason
from contracts.topology import Queue
from messaging.acks import Acks
from messaging.answers import Answers
from messaging.connection import goodbye

logger = logging.getLogger(__name__)

Message = aio_pika.abc.AbstractIncomingMessage

DeadLetter = Callable[[Message, DeadLetterReason, str], Awaitable[bool]]
"""Copies a message to jobcast.dead with a reason and its detail in words; True once RabbitMQ
confirmed the copy (messaging/dead_letters.py, `dead_letters_via`)."""

AroundConsume = Callable[[Message], AbstractContextManager[object]]
"""Wraps the handling of one message: log context, metrics, a tracing span."""


def nothing_around(_: Message) -> AbstractContextManager[object]:
    return nullcontext()


class Consumer:
    """Consumes `queue`; subclasses say what `handle` does with each message and settle it."""

    def __init__(
        self,
        queue: Queue,
        dead_letter: DeadLetter,
        *,
        prefetch: int,
        around: AroundConsume = nothing_around,
        answers: Answers | None = None,
    ) -> None:
        self.queue = queue
        self._dead_letter = dead_letter
        self._prefetch = prefetch
        self.around = around
        self.answers = answers or Answers()
        """Where `answer` publishes (a connection of its own: messaging/answers.py)."""
        self._connection: aio_pika.abc.AbstractConnection | None = None
        self._channel: aio_pika.abc.AbstractChannel | None = None
        self._consuming: aio_pika.abc.AbstractQueue | None = None
        self._consumer_tag: str | None = None
        self._handling: set[asyncio.Task[object]] = set()
        self.acks = Acks()
        """Acks of this consumer's deliveries, gathered per turn of the loop (messaging/acks.py)."""

    async def handle(self, message: Message) -> None:
        raise NotImplementedError

    async def start(self, connection: aio_pika.abc.AbstractConnection) -> None:
        """Start consuming on a new channel of `connection` (restored with it, if robust)."""
        self._connection = connection
        # NOTE: no publisher confirms: what goes out on this channel (answers) is a courtesy.
        self._channel = await connection.channel(publisher_confirms=False)
        await self._channel.set_qos(prefetch_count=self._prefetch)
        # NOTE: declared (passively), not just named: a robust channel re-consumes only the
        # queues it declared, so a get_queue() consumer would not come back after a reconnect.
        self._consuming = await self._channel.declare_queue(self.queue.name, passive=True)
        self._consumer_tag = await self._consuming.consume(self.on_message)

    async def stop(self, timeout: float | None = None) -> None:
        """Stop taking messages; those being handled finish first, for up to `timeout` seconds
        (then they are cancelled, unsettled: RabbitMQ redelivers them)."""
        if self._consuming is not None and self._consumer_tag is not None:
            await goodbye(self._consuming.cancel(self._consumer_tag))
        if self._handling:
            _, late = await asyncio.wait(self._handling, timeout=timeout)
            for task in late:
                task.cancel()
        if self._channel is not None:
            await goodbye(self._channel.close())

    async def move_to_dead(self, message: Message, reason: DeadLetterReason, detail: str) -> None:
        """Move `message` to jobcast.dead with `reason` and `detail`, then ack it; if the copy is
        not confirmed, reject it instead (RabbitMQ's own dead-lettering keeps it)."""
        if await self._dead_letter(message, reason, detail):
            await self.ack(message)
        else:
            await message.reject(requeue=False)

    async def ack(self, message: Message) -> None:
        """Ack `message`, in one multiple-ack with the others acked in this turn of the loop
        where their deliveries allow; returns once the ack is sent."""
        await self.acks.ack(message)

    async def answer(self, message: Message, body: BaseModel) -> None:
        """Answer an RPC request (one with reply_to) through `answers`; a request without
        reply_to gets nothing."""
        await self.answers.send(message.reply_to, message.correlation_id, body)

    async def on_message(self, message: Message) -> None:
        """How a delivery is taken: here, in a task of its own (aio-pika's) running `handle`;
        a consumer that settles in batches overrides this."""
        task = asyncio.current_task()
        if task is not None:
            self._handling.add(task)
        self.acks.delivered(message)
        try:
            with self.around(message):
                await self.handle(message)
        except Exception:
            # NOTE: a bug, not a bad message (handlers settle those): hand it back. If it keeps
            # failing, the queue's delivery limit dead-letters it, so it never stalls the queue.
            logger.exception("handling a message from %s failed; it goes back", self.queue.name)
            await quietly_nack(message)
        finally:
            self.acks.forget(message)
            if task is not None:
                self._handling.discard(task)


async def quietly_nack(message: Message) -> None:
    """Hand `message` back to the queue, if its channel is still there to say so."""
    try:
        await message.nack(requeue=True)
    except Exception:  # settled already, or the channel is gone: RabbitMQ requeues it itself
        logger.debug("nack after a failed handler did not go through", exc_info=True)
