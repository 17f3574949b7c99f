"""Hand-backs: jobs a stopping worker did not finish, put back on jobcast.jobs by a gateway.

A worker's broker user may not publish jobs (docs/security.md), so a stopping worker hands its
job to jobcast.handback; its queue, jobcast.handed-back, is consumed here. Each hand-back is
checked (contracts/handbacks.py) and republished onto jobcast.jobs as it came, signature and
crash count kept; it is acked only once RabbitMQ confirmed the job. One that fails the checks
is dead-lettered with the reason and never becomes a job. While no gateway runs, hand-backs
wait in their queue.
"""

import logging
from collections.abc import Awaitable, Callable

from contracts.errors import BrokerUnavailableError, RefusedMessageError
from contracts.handbacks import checked_hand_back
from contracts.signing import Signer
from contracts.topology import HANDBACK_QUEUE
from messaging.connection import writable_headers
from messaging.consumer import (
    AroundConsume,
    Consumer,
    DeadLetter,
    Message,
    nothing_around,
    quietly_nack,
)

logger = logging.getLogger(__name__)

Republish = Callable[[bytes, dict[str, object]], Awaitable[None]]
"""Publishes a job's body with its headers on jobcast.jobs, returning once RabbitMQ confirmed
it (BrokerUnavailableError if not): the gateway's JobPublisher.republish."""


class HandBackRelay(Consumer):
    """Consumes jobcast.handed-back and puts each good hand-back back on jobcast.jobs."""

    def __init__(
        self,
        republish: Republish,
        signer: Signer,
        dead_letter: DeadLetter,
        *,
        prefetch: int = 16,
        around: AroundConsume = nothing_around,
    ) -> None:
        super().__init__(HANDBACK_QUEUE, dead_letter, prefetch=prefetch, around=around)
        self._republish = republish
        self._signer = signer

    async def handle(self, message: Message) -> None:
        """Check the hand-back; republish it onto jobcast.jobs, then ack (or dead-letter it)."""
        try:
            headers = checked_hand_back(message.body, message.headers, self._signer)
        except RefusedMessageError as exc:
            await self.move_to_dead(message, exc.reason, exc.detail)
            return
        try:
            await self._republish(message.body, writable_headers(headers))
        except BrokerUnavailableError as exc:
            # NOTE: kept, not lost: it goes back to its queue for the next try (the queue's
            # delivery limit dead-letters one that can never be put back).
            logger.warning("hand-back not put back on jobcast.jobs, retried later: %s", exc)
            await quietly_nack(message)
            return
        await self.ack(message)
