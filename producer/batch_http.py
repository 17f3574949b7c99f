"""The HTTP intake of batches: POST /schedule/batch."""

from typing import Annotated

from fastapi import APIRouter, Depends

from contracts.batches import MAX_BATCH_JOBS, BatchAccepted, BatchRequest
from contracts.principals import Principal, WhoAsks, anyone
from producer.batches import BatchScheduler

BATCH_PATH = "/schedule/batch"

ERRORS = {
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


def router(batches: BatchScheduler, who: WhoAsks = anyone) -> APIRouter:
    """POST /schedule/batch, answered by `batches`; its jobs belong to the caller's key (`who`)."""
    routes = APIRouter(tags=["jobs"])

    @routes.post(BATCH_PATH, response_model=BatchAccepted, responses=ERRORS)  # type: ignore[arg-type]
    async def schedule_batch(
        batch: BatchRequest, principal: Annotated[Principal, Depends(who)]
    ) -> BatchAccepted:
        """Schedule up to 1,000 jobs at once, all or none; answers with their offsets in the
        order of `jobs`."""
        return await batches.schedule(batch, owner=principal.name)

    return routes
