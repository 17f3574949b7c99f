"""The AMQP intake: JobRequests on jobcast.schedule, answered like POST /schedule."""

from faststream import AckPolicy
from faststream.rabbit import RabbitRouter
from faststream.rabbit.annotations import RabbitBroker, RabbitMessage
from pydantic import ValidationError

from contracts import (
    BrokerUnavailableError,
    IdempotencyConflictError,
    JobAccepted,
    JobRequest,
    ScheduleRejected,
)
from contracts.errors import describe
from contracts.publishing import dead_letter
from contracts.topology import SCHEDULE_QUEUE
from producer.service import Scheduler


def intake_router(scheduler: Scheduler) -> RabbitRouter:
    """A router whose one handler schedules JobRequests from jobcast.schedule."""
    router = RabbitRouter()

    @router.subscriber(
        SCHEDULE_QUEUE, ack_policy=AckPolicy.MANUAL, title="jobcast.schedule:on_schedule"
    )
    async def on_schedule(
        msg: RabbitMessage, broker: RabbitBroker
    ) -> JobAccepted | ScheduleRejected | None:
        """Schedule the job; with reply_to, answer {"offset": n} (or why not)."""
        try:
            request = JobRequest.model_validate_json(msg.body)
        except ValidationError as exc:
            reason = f"invalid job request: {describe(exc)}"
            await dead_letter(broker, msg, reason=reason, source=SCHEDULE_QUEUE)
            return ScheduleRejected(error="invalid_request", detail=reason)
        # NOTE: FastStream invents a message_id when there is none; only the sender's counts.
        key = msg.raw_message.message_id
        try:
            accepted = await scheduler.schedule(request, idempotency_key=key)
        except IdempotencyConflictError as exc:
            await dead_letter(broker, msg, reason=str(exc), source=SCHEDULE_QUEUE)
            return ScheduleRejected(error="idempotency_conflict", detail=str(exc))
        except BrokerUnavailableError:
            await msg.nack(requeue=True)  # try again once the broker confirms again
            return None
        await msg.ack()
        return accepted

    return router
