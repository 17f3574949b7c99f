"""The worker's broker edge: take a job from jobcast.jobs, run it, ack after the last reply.

On aio-pika directly (messaging/consumer.py): every job passes through here. What to do with
a job is decided in consumer/decisions.py; this module gathers what those decisions need and
settles the message as they say."""

import asyncio
import logging

from aio_pika.abc import AbstractConnection as Connection
from faststream.rabbit import RabbitBroker
from pydantic import ValidationError

from consumer.decisions import (
    Ack,
    Cancel,
    Delivered,
    Fail,
    GiveUp,
    HandBack,
    after_run,
    decide,
    needs_resume_point,
    read_job,
)
from consumer.deliveries import crashes, hand_back_headers, handed_back
from consumer.runner import run_job
from consumer.worker import Worker
from contracts import Job, Progress, ProgressQuery, Reply
from contracts.errors import BrokerUnavailableError, DeadLetterReason
from contracts.headers import HEADER_SIGNATURE
from contracts.topology import HANDBACK_EXCHANGE, JOBS_QUEUE, PROGRESS_EXCHANGE
from messaging.consumer import (
    AroundConsume,
    Consumer,
    DeadLetter,
    Message,
    nothing_around,
    quietly_nack,
)
from messaging.publishing import publish_confirmed
from messaging.rpc import request_reply

logger = logging.getLogger(__name__)


class JobConsumer(Consumer):
    """Takes jobs from jobcast.jobs, as many at once as the worker's concurrency."""

    def __init__(
        self,
        worker: Worker,
        broker: RabbitBroker,
        dead_letter: DeadLetter,
        *,
        around: AroundConsume = nothing_around,
    ) -> None:
        super().__init__(JOBS_QUEUE, dead_letter, prefetch=worker.concurrency, around=around)
        self.worker = worker
        self._broker = broker

    async def handle(self, msg: Message) -> None:
        """Run the job's pipeline; publish each step's Reply on jobcast.replies."""
        worker = self.worker
        job = read_job(msg.body, (msg.headers or {}).get(HEADER_SIGNATURE), worker.signer)
        if isinstance(job, GiveUp):
            await self.move_to_dead(msg, job.reason, job.detail)
            return
        delivered = Delivered(
            job,
            crashes=crashes(msg.headers, worker.max_deliveries),
            may_have_run=msg.redelivered or handed_back(msg.headers),
            cancel_heard=job.offset in worker.cancels,
            may_have_missed_cancel=worker.cancels.may_have_missed(job.scheduled_at),
        )
        log = {"offset": job.offset, "fn": job.request.fn, "crashes": delivered.crashes}
        worker.in_flight += 1
        try:
            start = None
            if needs_resume_point(delivered, worker.registry):
                start = await _resume_point(self._connection, worker, job, catch_up=True)
            decision = decide(
                delivered, worker.registry, start, max_deliveries=worker.max_deliveries
            )
            if isinstance(decision, Ack):
                logger.info("job already finished, acking offset=%(offset)s", log)
                await self.ack(msg)
                return
            if isinstance(decision, Cancel):
                await _publish_error(worker, decision.reply)
                await self.ack(msg)
                logger.info("job cancelled before it ran here offset=%(offset)s", log)
                return
            if isinstance(decision, HandBack):
                await self._hand_back(msg, job, delivered.crashes, decision.next_seq)
                logger.info("cancelled job, resume point unknown: back offset=%(offset)s", log)
                return
            if isinstance(decision, Fail):
                await _publish_error(worker, decision.reply)
                await self.move_to_dead(msg, decision.reason, decision.detail)
                if decision.reason is DeadLetterReason.CRASH_LOOP:
                    logger.warning("crash loop, job failed offset=%(offset)s", log)
                return
            with worker.cancels.running(job.offset) as cancelled:
                result = await run_job(
                    job,
                    decision.pipeline,
                    worker.replies.publish_reply,
                    start=decision.start,
                    retry=worker.retry,
                    stopping=worker.stopping,
                    observe=worker.observe,
                    confirm_timeout=worker.publish_timeout,
                    cancelled=cancelled,
                    max_result_bytes=worker.max_result_bytes,
                )
        except BrokerUnavailableError:
            logger.warning("broker lost mid-job; it will be redelivered offset=%(offset)s", log)
            await quietly_nack(msg)
            return
        finally:
            worker.in_flight -= 1
        settle = after_run(result, decision.start)
        if isinstance(settle, HandBack):
            await self._hand_back(msg, job, delivered.crashes, settle.next_seq)
            logger.info("worker stopping; job handed back offset=%(offset)s", log)
        elif isinstance(settle, GiveUp):
            await self.move_to_dead(msg, settle.reason, settle.detail)
        else:
            await self.ack(msg)
        logger.info(
            "job %s offset=%s fn=%s steps_run=%s crashes=%s",
            result.outcome,
            job.offset,
            job.request.fn,
            result.steps_run,
            delivered.crashes,
        )

    async def _hand_back(self, msg: Message, job: Job, crashes_so_far: int, next_seq: int) -> None:
        """Give a job this stopping worker did not finish to the next one, without counting a
        crash: a new message with the crashes so far on jobcast.handback, then ack. A gateway
        checks it and puts it at the tail of jobcast.jobs (producer/handbacks.py)."""
        # NOTE: nack(requeue=True) would raise the quorum queue's x-delivery-count, and eight
        # rolling restarts during one long job would fail it as a crash loop. Not straight onto
        # jobcast.jobs: a worker's broker user may not publish jobs (docs/security.md).
        worker = self.worker
        await _until_recorded(self._connection, worker, job, next_seq)
        try:
            await publish_confirmed(
                self._broker,
                msg.body,
                exchange=HANDBACK_EXCHANGE,
                headers=hand_back_headers(msg.headers, crashes_so_far),
                message_id=msg.message_id,
                timeout=worker.publish_timeout,
            )
        except BrokerUnavailableError:
            # NOTE: RabbitMQ keeps the original then; that counts as one crash, as a worker
            # that lost the broker does.
            logger.warning("hand-back copy not confirmed; requeued offset=%s", job.offset)
            await quietly_nack(msg)
            return
        await self.ack(msg)


async def _until_recorded(
    connection: Connection | None, worker: Worker, job: Job, next_seq: int
) -> None:
    """Wait (up to the resume timeout) until the ledger has the replies this worker confirmed,
    so the next worker resumes after them instead of running the last step again."""
    try:
        async with asyncio.timeout(worker.resume_timeout):
            while next_seq > 0:
                found = await _resume_point(connection, worker, job)
                if found is None or found.next_seq >= next_seq:
                    return
                await asyncio.sleep(0.05)
    except TimeoutError:
        logger.info("ledger behind at hand-back offset=%s next_seq=%s", job.offset, next_seq)


async def _resume_point(
    connection: Connection | None, worker: Worker, job: Job, *, catch_up: bool = False
) -> Progress | None:
    """Ask the query side how far this redelivered job got; None (start over) if it can't say.

    With `catch_up`, while the worker has not yet learnt which cancels it missed before it
    began hearing them, the answer also lists them: the jobs after this one need not ask.
    """
    cancels = worker.cancels
    asking = catch_up and cancels.catching_up
    generation = cancels.generation
    try:
        answer = await request_reply(
            connection,
            ProgressQuery(offset=job.offset, pending_cancels=asking),
            exchange=PROGRESS_EXCHANGE,
            timeout=worker.resume_timeout,
        )
        found = Progress.model_validate_json(answer)
    except (TimeoutError, ValidationError, BrokerUnavailableError) as exc:
        logger.warning("no resume point for offset=%s (%s); starting over", job.offset, exc)
        return None
    if asking and found.pending_cancels is not None:
        cancels.caught_up(found.pending_cancels, generation)
    return found


async def _publish_error(worker: Worker, reply: Reply) -> None:
    """Publish a job's error (or cancelled) reply outside a run, waiting up to the worker's
    publish timeout."""
    try:
        async with asyncio.timeout(worker.publish_timeout):
            await worker.replies.publish_reply(reply)
    except TimeoutError:
        raise BrokerUnavailableError("RabbitMQ did not confirm the error reply") from None
