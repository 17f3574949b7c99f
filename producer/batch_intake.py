"""The AMQP batch intake: BatchRequests on jobcast.schedule.batch, answered like POST
/schedule/batch (with reply_to: a BatchAccepted, or a ScheduleRejected saying why).

The rules of jobcast.schedule (producer/intake.py), for a whole batch: acked only once every
job is durable and confirmed; a batch that can never be scheduled (too large, not a
BatchRequest, an item's key used for another request, a run_at out of bounds) goes to
jobcast.dead with the reason and the caller hears it; while the ledger is down it waits,
unacked; while the broker does not confirm, it goes back to the queue, unanswered (no offset of
it was handed out; with item keys the retry cannot schedule a job twice).
"""

import logging

from contracts import BrokerUnavailableError, IdempotencyConflictError, ScheduleRejected
from contracts.batches import MAX_BATCH_BYTES, BatchRequest
from contracts.control import DelayError
from contracts.errors import DeadLetterReason
from contracts.topology import BATCH_QUEUE
from ledger.outages import while_ledger_down
from messaging.answers import Answers
from messaging.consumer import AroundConsume, Consumer, DeadLetter, Message, nothing_around
from producer.batches import BatchScheduler
from producer.submitters import SubmissionRefusedError, Submitters, owner_of, parsed, refuse

logger = logging.getLogger(__name__)

BATCH_PREFETCH = 4
"""Batches the gateway takes at once: each may be up to MAX_BATCH_BYTES, so few."""


class BatchIntake(Consumer):
    """Consumes jobcast.schedule.batch and schedules each batch, all or nothing."""

    def __init__(
        self,
        batches: BatchScheduler,
        dead_letter: DeadLetter,
        *,
        prefetch: int = BATCH_PREFETCH,
        around: AroundConsume = nothing_around,
        submitters: Submitters | None = None,
        answers: Answers | None = None,
    ) -> None:
        super().__init__(
            BATCH_QUEUE, dead_letter, prefetch=prefetch, around=around, answers=answers
        )
        self._batches = batches
        self._submitters = submitters
        """With JOBCAST_AUTH=on: who sent a batch (x-jobcast-key); None: auth off."""

    async def handle(self, message: Message) -> None:
        """Schedule the batch; with reply_to, answer its offsets (or why not)."""
        try:
            await self._schedule(message)
        except SubmissionRefusedError as refused:
            await refuse(self, message, refused, ScheduleRejected)

    async def _schedule(self, message: Message) -> None:
        owner = await owner_of(self._submitters, message.headers)
        batch = parsed(message.body, BatchRequest, MAX_BATCH_BYTES, "batch")
        try:
            accepted = await while_ledger_down(self._batches.schedule, batch, owner=owner)
        except IdempotencyConflictError as exc:
            reason = DeadLetterReason.IDEMPOTENCY_CONFLICT
            raise SubmissionRefusedError(reason, str(exc), "idempotency_conflict") from None
        except DelayError as exc:
            raise SubmissionRefusedError(DeadLetterReason.INVALID_REQUEST, str(exc)) from None
        except BrokerUnavailableError:
            await message.nack(requeue=True)  # again once the broker confirms; no answer
            return
        await self.ack(message)
        await self.answer(message, accepted)
