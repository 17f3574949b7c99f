"""The query side's broker edge: replies into the ledger, and resume points for workers."""

import logging

from faststream.rabbit import RabbitBroker, RabbitResponse, RabbitRouter

from contracts import Progress, ProgressQuery, UnknownOffsetError
from contracts.publishing import dead_letters_via
from contracts.signing import Signer
from contracts.topology import LEDGER_QUEUE, PROGRESS_QUEUE
from ledger.base import progress
from query.recorder import RecordObserver, ReplyRecorder, StoreMany
from query.service import Results

logger = logging.getLogger(__name__)


def query_router(results: Results) -> RabbitRouter:
    """A router that answers workers' resume questions (replies are stored by ReplyRecorder)."""
    router = RabbitRouter()

    @router.subscriber(PROGRESS_QUEUE, title="jobcast.progress:on_progress")
    async def on_progress(query: ProgressQuery) -> RabbitResponse:
        """Tell a worker where a redelivered job resumes."""
        try:
            found = await progress(results.ledger, query.offset)
        except UnknownOffsetError:
            found = Progress(offset=query.offset, next_seq=0)
        # NOTE: not mandatory: RabbitMQ 3.10 delivers a mandatory publish to a direct reply-to
        # address and *also* returns it as NO_ROUTE (see producer/intake.py).
        return RabbitResponse(found, mandatory=False)

    return router


def reply_recorder(
    broker: RabbitBroker,
    results: Results,
    store_many: StoreMany,
    signer: Signer,
    *,
    prefetch: int,
    observe: RecordObserver | None = None,
) -> ReplyRecorder:
    """The consumer of jobcast.ledger, dead-lettering through `broker` what it cannot store."""

    return ReplyRecorder(
        store_many,
        results.hub,
        dead_letters_via(broker, LEDGER_QUEUE),
        signer,
        prefetch=prefetch,
        observe=observe,
    )
