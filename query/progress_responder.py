"""The query side's FastStream edge: where a redelivered job resumes (the progress RPC)."""

import logging
from typing import Any

from faststream.message import StreamMessage
from faststream.rabbit import RabbitRouter
from faststream.rabbit.annotations import RabbitMessage
from pydantic import BaseModel, ValidationError

from contracts import Progress, ProgressQuery, UnavailableError, UnknownOffsetError
from contracts.errors import describe
from contracts.messages import MAX_PENDING_CANCELS, ProgressRejected
from contracts.topology import DIRECT_REPLY_TO, PROGRESS_QUEUE
from messaging.answers import Answers
from messaging.consumer import AroundConsume, nothing_around
from messaging.faststream import rabbit_queue
from query.progress import progress
from query.results import Results

logger = logging.getLogger(__name__)

MAX_QUESTION_BYTES = 1024
"""A progress question is `{"offset": n}`; anything much larger is not one."""


def query_router(
    results: Results, answers: Answers, *, around: AroundConsume = nothing_around
) -> RabbitRouter:
    """A router that answers workers' resume questions (replies are stored by ReplyRecorder);
    each question handled inside `around`, as the aio-pika consumers handle theirs. Answers go
    through `answers`, a connection of their own (messaging/answers.py), not FastStream's."""
    router = RabbitRouter()

    # NOTE: the body is parsed here, not by FastStream (its decoder stays out: `_undecoded`):
    # a question FastStream cannot parse is rejected with a traceback and never answered.
    @router.subscriber(
        rabbit_queue(PROGRESS_QUEUE),
        title="jobcast.progress:on_progress",
        decoder=_undecoded,
        no_reply=True,
    )
    async def on_progress(msg: RabbitMessage) -> None:
        """Tell a worker where a redelivered job resumes."""
        # NOTE: answered on direct reply-to only (workers ask that way, messaging/rpc.py): the
        # answer goes through the default exchange, which the gateway's user may write and a
        # worker's may not, so a reply_to naming a queue (jobcast.jobs) would have the gateway
        # publish there for whoever asked. (Without reply_to nothing is published anyway.)
        if msg.reply_to and not msg.reply_to.startswith(f"{DIRECT_REPLY_TO}."):
            logger.warning(
                "progress question dropped: reply_to %r is not direct reply-to", msg.reply_to[:80]
            )
            return
        with around(msg.raw_message):
            answer = await _answer(results, msg.body)
        await answers.send(msg.reply_to, msg.correlation_id, answer)

    return router


async def _undecoded(msg: StreamMessage[Any]) -> bytes:
    """The body as it came: `on_progress` parses it."""
    body: bytes = msg.body
    return body


async def _answer(results: Results, body: bytes) -> BaseModel:
    """The Progress a question asks for, or why there is none."""
    if len(body) > MAX_QUESTION_BYTES:
        return ProgressRejected(
            error="invalid_query", detail=f"question larger than {MAX_QUESTION_BYTES} bytes"
        )
    try:
        query = ProgressQuery.model_validate_json(body)
    except ValidationError as exc:
        logger.info("invalid progress question: %s", describe(exc))
        return ProgressRejected(error="invalid_query", detail=describe(exc))
    try:
        try:
            found = await progress(results.ledger, query.offset)
        except UnknownOffsetError:
            found = Progress(offset=query.offset, next_seq=0)
        if query.pending_cancels:
            pending = await results.ledger.pending_cancels(MAX_PENDING_CANCELS + 1)
            if len(pending) <= MAX_PENDING_CANCELS:
                found = found.model_copy(update={"pending_cancels": pending})
        return found
    except UnavailableError as exc:
        logger.warning("progress of offset=%s unknown: %s", query.offset, exc)
        return ProgressRejected(error="unavailable", detail=str(exc))
