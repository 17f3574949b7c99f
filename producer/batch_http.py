"""The HTTP intake of batches: POST /schedule/batch."""

from typing import Annotated

from fastapi import APIRouter, Depends

from contracts.batches import MAX_BATCH_JOBS, BatchAccepted, BatchRequest
from contracts.principals import Principal, WhoAsks, anyone
from contracts.read_tokens import BatchAcceptedWithToken
from producer.admission import NO_ADMISSION, Admission
from producer.batches import BatchScheduler

BATCH_PATH = "/schedule/batch"

ERRORS = {
    429: {
        "description": "JOBCAST_RATE_LIMIT: this key submitted faster than allowed (a batch "
        "counts its jobs, up to the burst); nothing was scheduled. Retry-After: seconds to wait."
    },
    409: {
        "description": "An item's idempotency_key was used before for another request; nothing "
        "of the batch was scheduled."
    },
    413: {"description": "The body is larger than JOBCAST_MAX_BATCH_BODY_BYTES."},
    422: {
        "description": f"Not a valid BatchRequest: no jobs or more than {MAX_BATCH_JOBS}, an "
        "invalid item (as for POST /schedule), an idempotency_key twice in the batch, or no room "
        "for the batch's tag; nothing was scheduled."
    },
    503: {
        "description": "RabbitMQ did not confirm every job of the batch: no offset was handed "
        "out (retry the batch; with idempotency keys a retry cannot schedule a job twice)."
    },
}


def router(
    batches: BatchScheduler, who: WhoAsks = anyone, admission: Admission = NO_ADMISSION
) -> APIRouter:
    """POST /schedule/batch, answered by `batches`; its jobs belong to the caller's key (`who`)."""
    routes = APIRouter(tags=["jobs"])

    @routes.post(
        BATCH_PATH,
        response_model=BatchAcceptedWithToken,
        # NOTE: read_token only when set (auth on): with auth off the answer is as before.
        response_model_exclude_unset=True,
        responses=ERRORS,  # type: ignore[arg-type]
    )
    async def schedule_batch(
        batch: BatchRequest, principal: Annotated[Principal, Depends(who)]
    ) -> BatchAccepted:
        """Schedule up to 1,000 jobs at once, all or none; answers with their offsets in the
        order of `jobs`."""
        admission.admit(principal.name, len(batch.jobs))
        accepted = await batches.schedule(batch, owner=principal.name)
        return admission.batch(principal.name, batch.batch, accepted)

    return routes
