"""The AMQP intake: JobRequests on jobcast.schedule, answered like POST /schedule."""

from faststream import AckPolicy
from faststream.rabbit import Channel, RabbitRouter
from pydantic import ValidationError

from contracts import (
    BrokerUnavailableError,
    IdempotencyConflictError,
    JobAccepted,
    JobRequest,
    ScheduleRejected,
)
from contracts.context import RabbitBroker, RabbitMessage
from contracts.errors import describe
from contracts.publishing import dead_letter
from contracts.retrying import while_ledger_down
from contracts.topology import SCHEDULE_QUEUE
from producer.service import Scheduler

INTAKE_PREFETCH = 64
"""Submissions the gateway takes from jobcast.schedule at once: enough to fill a ledger batch,
few enough that an overloaded gateway queues work in RabbitMQ rather than in its own memory."""


def intake_router(scheduler: Scheduler) -> RabbitRouter:
    """A router whose one handler schedules JobRequests from jobcast.schedule."""
    router = RabbitRouter()

    @router.subscriber(
        SCHEDULE_QUEUE,
        # NOTE: bounded, so a flood of submissions waits in the queue, not in gateway memory.
        channel=Channel(prefetch_count=INTAKE_PREFETCH),
        ack_policy=AckPolicy.MANUAL,
        # NOTE: answers are published explicitly: a request handed back to the queue must get
        # none (FastStream would answer a None result with an empty body).
        no_reply=True,
        title="jobcast.schedule:on_schedule",
    )
    async def on_schedule(msg: RabbitMessage, broker: RabbitBroker) -> None:
        """Schedule the job; with reply_to, answer {"offset": n} (or why not)."""
        try:
            request = JobRequest.model_validate_json(msg.body)
        except ValidationError as exc:
            reason = f"invalid job request: {describe(exc)}"
            await dead_letter(broker, msg, reason=reason, source=SCHEDULE_QUEUE)
            await _answer(broker, msg, ScheduleRejected(error="invalid_request", detail=reason))
            return
        # NOTE: FastStream invents a message_id when there is none; only the sender's counts.
        key = msg.raw_message.message_id
        try:
            # NOTE: while the ledger is down the submission waits here, unacked, and is retried;
            # requeueing it would spend its delivery limit and dead-letter a good request.
            accepted = await while_ledger_down(scheduler.schedule, request, idempotency_key=key)
        except IdempotencyConflictError as exc:
            await dead_letter(broker, msg, reason=str(exc), source=SCHEDULE_QUEUE)
            rejected = ScheduleRejected(error="idempotency_conflict", detail=str(exc))
            await _answer(broker, msg, rejected)
            return
        except BrokerUnavailableError:
            await msg.nack(requeue=True)  # try again once the broker confirms again; no answer
            return
        await msg.ack()
        await _answer(broker, msg, accepted)

    return router


async def _answer(
    broker: RabbitBroker, msg: RabbitMessage, body: JobAccepted | ScheduleRejected
) -> None:
    """Answer an RPC request (one with reply_to); a request without it gets nothing."""
    if not msg.reply_to:
        return
    # NOTE: RabbitMQ (3.10 here) delivers a mandatory publish to a direct reply-to address
    # (amq.rabbitmq.reply-to.*) and *also* returns it as NO_ROUTE, so answers go without
    # mandatory. The answer is a courtesy (the job is already durable): an answer to a
    # vanished caller may simply be dropped.
    await broker.publish(
        body, routing_key=msg.reply_to, correlation_id=msg.correlation_id, mandatory=False
    )
