"""The AMQP intake: JobRequests on jobcast.schedule, answered like POST /schedule.

Every job submitted over AMQP passes here, so it talks to aio-pika directly (FastStream's
per-message machinery cost the gateway more CPU than scheduling the job did; py-spy, bench/).
The rules are those of every jobcast consumer: ack only once the job is durable and confirmed;
a request that can never be scheduled goes to jobcast.dead with the reason (and the caller gets
the reason); while the ledger is down a request waits, unacked; while the broker does not
confirm, it goes back to the queue, unanswered.
"""

import logging

from pydantic import TypeAdapter, ValidationError

from contracts import (
    BrokerUnavailableError,
    IdempotencyConflictError,
    JobRequest,
    ScheduleRejected,
)
from contracts.control import DelayError
from contracts.errors import DeadLetterReason
from contracts.messages import MAX_REQUEST_BYTES
from contracts.text import IdempotencyKey
from contracts.topology import SCHEDULE_QUEUE
from ledger.outages import while_ledger_down
from messaging.answers import Answers
from messaging.consumer import AroundConsume, Consumer, DeadLetter, Message, nothing_around
from producer.scheduler import Scheduler
from producer.submitters import SubmissionRefusedError, Submitters, owner_of, parsed, refuse

logger = logging.getLogger(__name__)

INTAKE_PREFETCH = 64
"""Submissions the gateway takes from jobcast.schedule at once: enough to fill a ledger batch,
few enough that an overloaded gateway queues work in RabbitMQ rather than in its own memory."""

_IDEMPOTENCY_KEY: TypeAdapter[str | None] = TypeAdapter(IdempotencyKey | None)


class Intake(Consumer):
    """Consumes jobcast.schedule and schedules what arrives."""

    def __init__(
        self,
        scheduler: Scheduler,
        dead_letter: DeadLetter,
        *,
        prefetch: int = INTAKE_PREFETCH,
        around: AroundConsume = nothing_around,
        submitters: Submitters | None = None,
        answers: Answers | None = None,
    ) -> None:
        super().__init__(
            SCHEDULE_QUEUE, dead_letter, prefetch=prefetch, around=around, answers=answers
        )
        self._scheduler = scheduler
        self._submitters = submitters
        """With JOBCAST_AUTH=on: who sent a submission (x-jobcast-key); None: auth off."""

    async def handle(self, message: Message) -> None:
        """Schedule the job; with reply_to, answer {"offset": n} (or why not)."""
        try:
            await self._schedule(message)
        except SubmissionRefusedError as refused:
            await refuse(self, message, refused, ScheduleRejected)

    async def _schedule(self, message: Message) -> None:
        owner = await owner_of(self._submitters, message.headers)
        request = parsed(message.body, JobRequest, MAX_REQUEST_BYTES, "job request")
        try:
            key = _IDEMPOTENCY_KEY.validate_python(message.message_id)
        except ValidationError as exc:
            why = f"invalid message_id (the idempotency key): {exc.errors()[0]['msg']}"
            raise SubmissionRefusedError(DeadLetterReason.INVALID_REQUEST, why) from None
        try:
            # NOTE: while the ledger is down the submission waits here, unacked, and is retried;
            # requeueing it would spend its delivery limit and dead-letter a good request.
            accepted = await while_ledger_down(
                self._scheduler.schedule, request, idempotency_key=key, owner=owner
            )
        except DelayError as exc:
            raise SubmissionRefusedError(DeadLetterReason.INVALID_REQUEST, str(exc)) from None
        except IdempotencyConflictError as exc:
            reason = DeadLetterReason.IDEMPOTENCY_CONFLICT
            raise SubmissionRefusedError(reason, str(exc), "idempotency_conflict") from None
        except BrokerUnavailableError:
            await message.nack(requeue=True)  # again once the broker confirms; no answer
            return
        await self.ack(message)
        await self.answer(message, accepted)
