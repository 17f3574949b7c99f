"""The query side's broker edge: replies into the ledger, and resume points for workers."""

import logging

from faststream import AckPolicy
from faststream.rabbit import Channel, RabbitResponse, RabbitRouter
from pydantic import ValidationError

from contracts import Progress, ProgressQuery, Reply, UnknownOffsetError
from contracts.context import RabbitBroker, RabbitMessage
from contracts.errors import describe
from contracts.publishing import dead_letter
from contracts.retrying import while_ledger_down
from contracts.topology import LEDGER_QUEUE, PROGRESS_QUEUE, REPLIES_EXCHANGE
from ledger import StoreOutcome
from ledger.base import progress
from query.batcher import ReplyBatcher
from query.service import Results

logger = logging.getLogger(__name__)


def query_router(results: Results, batcher: ReplyBatcher, prefetch: int) -> RabbitRouter:
    """A router that stores every reply once and answers workers' resume questions."""
    router = RabbitRouter()

    @router.subscriber(
        LEDGER_QUEUE,
        REPLIES_EXCHANGE,
        channel=Channel(prefetch_count=prefetch),
        ack_policy=AckPolicy.MANUAL,
        title="jobcast.ledger:on_reply",
    )
    async def on_reply(msg: RabbitMessage, broker: RabbitBroker) -> None:
        """Store a reply in the ledger; ack only once it is committed."""
        try:
            reply = Reply.model_validate_json(msg.body)
        except ValidationError as exc:
            await dead_letter(
                broker, msg, reason=f"invalid reply: {describe(exc)}", source=LEDGER_QUEUE
            )
            return
        # NOTE: while the ledger is down the reply waits here, unacked, and is retried:
        # never dropped, never requeued (which would spend its delivery limit).
        outcome = await while_ledger_down(batcher.store, reply)
        if outcome is StoreOutcome.UNKNOWN_OFFSET:
            await dead_letter(
                broker,
                msg,
                reason=f"reply for offset {reply.offset}, never handed out",
                source=LEDGER_QUEUE,
            )
            return
        await msg.ack()
        if outcome is StoreOutcome.STORED:
            results.hub.notify(reply.offset)

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
