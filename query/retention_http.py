"""DELETE /jobs/{offset}: a finished job's request and results removed now, not at retention."""

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from contracts.principals import Principal, WhoAsks, anyone
from ledger import Ledger
from ledger.keys import ensure_visible
from query.http import Offset

ERRORS = {
    404: {
        "description": "Offset not found: it was never handed out.",
        "content": {"application/json": {"example": {"detail": "Offset not found"}}},
    },
    409: {
        "description": "The job has not finished (queued, scheduled or running): nothing "
        "was deleted."
    },
    410: {
        "description": "Offset expired: the job was already purged (JOBCAST_RETENTION or an "
        "earlier DELETE).",
        "content": {"application/json": {"example": {"detail": "Offset expired"}}},
    },
    422: {"description": "The offset is not a non-negative integer."},
    503: {"description": "The ledger cannot be written right now."},
}


def router(ledger: Ledger, who: WhoAsks = anyone) -> APIRouter:
    """DELETE /jobs/{offset}, on `ledger`, of the jobs the caller (`who`) owns."""
    routes = APIRouter(tags=["results"])

    @routes.delete("/jobs/{offset}", status_code=204, responses=ERRORS)  # type: ignore[arg-type]
    async def delete_job(offset: Offset, principal: Annotated[Principal, Depends(who)]) -> Response:
        """Delete a finished job's request and results; its offset answers 410 from now on."""
        await ensure_visible(ledger, principal, offset, write=True)
        await ledger.delete_job(offset)
        return Response(status_code=204)

    return routes
