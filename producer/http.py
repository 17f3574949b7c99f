"""The HTTP intake: POST /schedule."""

from typing import Annotated

from fastapi import APIRouter, Header

from contracts import JobAccepted, JobRequest
from contracts.text import IdempotencyKey
from producer.scheduler import Scheduler

ERRORS = {
    409: {"description": "The Idempotency-Key was used before for another request."},
    413: {"description": "The body is larger than JOBCAST_MAX_BODY_BYTES."},
    422: {
        "description": "The body is not JSON or not a valid JobRequest, or the Idempotency-Key "
        "is longer than 200 characters or holds control characters."
    },
    503: {"description": "RabbitMQ did not confirm the job; no offset was handed out."},
}


def router(scheduler: Scheduler) -> APIRouter:
    """POST /schedule, answered by `scheduler`."""
    routes = APIRouter(tags=["jobs"])

    @routes.post("/schedule", response_model=JobAccepted, responses=ERRORS)  # type: ignore[arg-type]
    async def schedule_job(
        job: JobRequest,
        idempotency_key: Annotated[IdempotencyKey | None, Header()] = None,
    ) -> JobAccepted:
        """Schedule a job; answers at once with the offset that names it."""
        return await scheduler.schedule(job, idempotency_key=idempotency_key)

    return routes
