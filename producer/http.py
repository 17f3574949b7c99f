"""The HTTP intake: POST /schedule."""

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path
from pydantic import BeforeValidator

from contracts import JobAccepted, JobRequest
from contracts.control import CancelAccepted
from contracts.messages import MAX_OFFSET
from contracts.principals import Principal, WhoAsks, anyone
from contracts.read_tokens import JobAcceptedWithToken
from contracts.text import IdempotencyKey
from ledger.keys import ensure_visible
from producer.admission import NO_ADMISSION, Admission
from producer.cancelling import Canceller
from producer.scheduler import Scheduler

ERRORS = {
    409: {"description": "The Idempotency-Key was used before for another request."},
    413: {"description": "The body is larger than JOBCAST_MAX_BODY_BYTES."},
    422: {
        "description": "The body is not JSON or not a valid JobRequest, or the Idempotency-Key "
        "is longer than 200 characters or holds control characters, or run_at is more than "
        "60 seconds in the past or more than 30 days ahead."
    },
    503: {"description": "RabbitMQ did not confirm the job; no offset was handed out."},
    429: {
        "description": "JOBCAST_RATE_LIMIT: this key submitted faster than allowed; nothing was "
        "scheduled. Retry-After: whole seconds to wait."
    },
}


CANCEL_ERRORS = {
    404: {
        "description": "Offset not found: it was never handed out.",
        "content": {"application/json": {"example": {"detail": "Offset not found"}}},
    },
    409: {"description": "The job already ended done or failed; nothing changed."},
    422: {"description": "The offset is not a non-negative integer."},
    503: {
        "description": "The ledger is down (nothing changed), or RabbitMQ did not confirm the "
        "announcement to the workers (the cancel is recorded; ask again)."
    },
}


def _plain_digits(value: object) -> object:
    """A path offset as sent: only the digits 0-9 (int() would also take "+1", "1_000")."""
    if isinstance(value, str) and not (value.isascii() and value.isdigit()):
        raise ValueError("an offset is written with the digits 0-9 only")
    return value


Offset = Annotated[
    int,
    BeforeValidator(_plain_digits),
    Path(ge=0, le=MAX_OFFSET, description="The offset POST /schedule answered with."),
]


def router(
    scheduler: Scheduler,
    canceller: Canceller,
    who: WhoAsks = anyone,
    admission: Admission = NO_ADMISSION,
) -> APIRouter:
    """POST /schedule, answered by `scheduler`, and POST /jobs/{offset}/cancel by `canceller`;
    a job belongs to the key (`who`) that scheduled it, and only it (or an admin) cancels it."""
    routes = APIRouter(tags=["jobs"])

    @routes.post(
        "/jobs/{offset}/cancel",
        response_model=CancelAccepted,
        responses=CANCEL_ERRORS,  # type: ignore[arg-type]
    )
    async def cancel_job(
        offset: Offset, principal: Annotated[Principal, Depends(who)]
    ) -> CancelAccepted:
        """Cancel a job: a queued one never runs, a running one stops before its next step
        (its step sees `ctx.cancelled`), and it ends with a `cancelled` reply; a delayed one
        still waiting is `cancelled` at once. Asking twice is harmless."""
        await ensure_visible(canceller.ledger, principal, offset, write=True)
        return await canceller.cancel(offset)

    @routes.post(
        "/schedule",
        response_model=JobAcceptedWithToken,
        # NOTE: read_token only when set (auth on): with auth off the answer is the seed's.
        response_model_exclude_unset=True,
        responses=ERRORS,  # type: ignore[arg-type]
    )
    async def schedule_job(
        job: JobRequest,
        principal: Annotated[Principal, Depends(who)],
        idempotency_key: Annotated[IdempotencyKey | None, Header()] = None,
    ) -> JobAccepted:
        """Schedule a job; answers at once with the offset that names it."""
        admission.admit(principal.name)
        accepted = await scheduler.schedule(
            job, idempotency_key=idempotency_key, owner=principal.name
        )
        return admission.job(principal.name, accepted)

    return routes
