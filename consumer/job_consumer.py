"""The worker's broker edge: take a job from jobcast.jobs, run it, ack after the last reply.

On aio-pika directly (messaging/consumer.py): every job passes through here."""

import asyncio
import logging

from aio_pika.abc import AbstractConnection as Connection
from faststream.rabbit import RabbitBroker
from pydantic import ValidationError

from consumer.deliveries import crashes, hand_back_headers, handed_back
from consumer.runner import Outcome, run_job
from consumer.worker import Worker
from contracts import Job, Progress, ProgressQuery, Reply, ReplyKind, UnknownPipelineError
from contracts.errors import BrokerUnavailableError, DeadLetterReason, describe
from contracts.headers import HEADER_SIGNATURE
from contracts.messages import MAX_REQUEST_BYTES
from contracts.topology import JOBS_QUEUE, PROGRESS_QUEUE
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
        if len(msg.body) > MAX_REQUEST_BYTES:
            why = f"too large: a job of {len(msg.body)} bytes"
            await self.move_to_dead(msg, DeadLetterReason.TOO_LARGE, why)
            return
        signature = (msg.headers or {}).get(HEADER_SIGNATURE)
        if not worker.signer.verify(msg.body, signature):
            # NOTE: no error reply: a job no gateway signed names an offset it does not own.
            why = "no" if signature is None else "a wrong"
            detail = f"unsigned job: {why} {HEADER_SIGNATURE}"
            await self.move_to_dead(msg, DeadLetterReason.UNSIGNED, detail)
            return
        try:
            job = Job.model_validate_json(msg.body)
        except ValidationError as exc:
            detail = f"invalid job: {describe(exc)}"
            await self.move_to_dead(msg, DeadLetterReason.INVALID_JOB, detail)
            return

        crashed = crashes(msg.headers, worker.max_deliveries)
        log = {"offset": job.offset, "fn": job.request.fn, "crashes": crashed}
        worker.in_flight += 1
        try:
            try:
                pipeline = worker.registry.get(job.request.fn)
            except UnknownPipelineError as exc:
                failed = Reply(offset=job.offset, seq=0, kind=ReplyKind.ERROR, value=str(exc))
                await _publish_error(worker, failed)
                await self.move_to_dead(msg, DeadLetterReason.UNKNOWN_PIPELINE, str(exc))
                return
            may_have_run = msg.redelivered or handed_back(msg.headers)
            start = await _resume_point(self._connection, worker, job) if may_have_run else None
            if start is not None and start.finished:
                logger.info("job already finished, acking offset=%(offset)s", log)
                await msg.ack()
                return
            if crashed >= worker.max_deliveries:
                # NOTE: a job that took its worker down this often will do it again; fail it
                # with a reason before the broker's delivery limit drops it without one.
                # Only crashes count: a clean hand-back does not (see _hand_back).
                reason = (
                    f"gave up after {crashed} deliveries: each time, the worker "
                    f"running the job died or lost the broker"
                )
                seq = start.next_seq if start is not None else 0
                failed = Reply(offset=job.offset, seq=seq, kind=ReplyKind.ERROR, value=reason)
                await _publish_error(worker, failed)
                await self.move_to_dead(msg, DeadLetterReason.CRASH_LOOP, reason)
                logger.warning("crash loop, job failed offset=%(offset)s", log)
                return
            result = await run_job(
                job,
                pipeline,
                worker.replies.publish_reply,
                start=start,
                retry=worker.retry,
                stopping=worker.stopping,
                observe=worker.observe,
                confirm_timeout=worker.publish_timeout,
            )
        except BrokerUnavailableError:
            logger.warning("broker lost mid-job; it will be redelivered offset=%(offset)s", log)
            await quietly_nack(msg)
            return
        finally:
            worker.in_flight -= 1
        if result.outcome is Outcome.HANDED_BACK:
            next_seq = (start.next_seq if start is not None else 0) + result.steps_run
            await self._hand_back(msg, job, crashed, next_seq)
            logger.info("worker stopping; job handed back offset=%(offset)s", log)
        elif result.outcome is Outcome.FAILED:
            await self.move_to_dead(msg, DeadLetterReason.STEP_FAILED, result.reason or "failed")
        else:
            await msg.ack()
        logger.info(
            "job %s offset=%s fn=%s steps_run=%s crashes=%s",
            result.outcome,
            job.offset,
            job.request.fn,
            result.steps_run,
            crashed,
        )

    async def _hand_back(self, msg: Message, job: Job, crashes_so_far: int, next_seq: int) -> None:
        """Give a job this stopping worker did not finish to the next one, without counting a
        crash: a new message at the tail of jobcast.jobs with the crashes so far, then ack."""
        # NOTE: nack(requeue=True) would raise the quorum queue's x-delivery-count, and eight
        # rolling restarts during one long job would fail it as a crash loop.
        worker = self.worker
        await _until_recorded(self._connection, worker, job, next_seq)
        try:
            await publish_confirmed(
                self._broker,
                msg.body,
                queue=JOBS_QUEUE,
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
        await msg.ack()


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


async def _resume_point(connection: Connection | None, worker: Worker, job: Job) -> Progress | None:
    """Ask the query side how far this redelivered job got; None (start over) if it can't say."""
    try:
        answer = await request_reply(
            connection,
            ProgressQuery(offset=job.offset),
            queue=PROGRESS_QUEUE,
            timeout=worker.resume_timeout,
        )
        return Progress.model_validate_json(answer)
    except (TimeoutError, ValidationError, BrokerUnavailableError) as exc:
        logger.warning("no resume point for offset=%s (%s); starting over", job.offset, exc)
        return None


async def _publish_error(worker: Worker, reply: Reply) -> None:
    """Publish a job's error reply outside a run, waiting up to the worker's publish timeout."""
    try:
        async with asyncio.timeout(worker.publish_timeout):
            await worker.replies.publish_reply(reply)
    except TimeoutError:
        raise BrokerUnavailableError("RabbitMQ did not confirm the error reply") from None
