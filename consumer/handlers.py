"""The worker's broker edge: take a job from jobcast.jobs, run it, ack after the last reply.

On aio-pika directly (contracts/consuming.py): every job passes through here."""

import asyncio
import logging

from faststream.rabbit import RabbitBroker
from pydantic import ValidationError

from consumer.runner import Outcome, run_job
from consumer.worker import Worker
from contracts import Job, Progress, ProgressQuery, Reply, ReplyKind, UnknownPipelineError
from contracts.consuming import AroundConsume, Consumer, Message, nothing_around, quietly_nack
from contracts.errors import BrokerUnavailableError, describe
from contracts.publishing import dead_letters_via, request_reply
from contracts.topology import JOBS_QUEUE, PROGRESS_QUEUE

logger = logging.getLogger(__name__)


class JobConsumer(Consumer):
    """Takes jobs from jobcast.jobs, as many at once as the worker's concurrency."""

    def __init__(
        self,
        worker: Worker,
        broker: RabbitBroker,
        *,
        around: AroundConsume = nothing_around,
    ) -> None:
        super().__init__(
            JOBS_QUEUE,
            dead_letters_via(broker, JOBS_QUEUE),
            prefetch=worker.concurrency,
            around=around,
        )
        self.worker = worker
        self._broker = broker

    async def handle(self, msg: Message) -> None:
        """Run the job's pipeline; publish each step's Reply on jobcast.replies."""
        worker, broker = self.worker, self._broker
        try:
            job = Job.model_validate_json(msg.body)
        except ValidationError as exc:
            await self.move_to_dead(msg, f"invalid job: {describe(exc)}")
            return

        deliveries = _delivery_count(msg)
        log = {"offset": job.offset, "fn": job.request.fn, "delivery": deliveries}
        worker.in_flight += 1
        try:
            try:
                pipeline = worker.registry.get(job.request.fn)
            except UnknownPipelineError as exc:
                failed = Reply(offset=job.offset, seq=0, kind=ReplyKind.ERROR, value=str(exc))
                await _publish_error(worker, failed)
                await self.move_to_dead(msg, str(exc))
                return
            start = await _resume_point(broker, worker, job) if msg.redelivered else None
            if start is not None and start.finished:
                logger.info("job already finished, acking offset=%(offset)s", log)
                await msg.ack()
                return
            if deliveries >= worker.max_deliveries:
                # NOTE: a job that took its worker down this often will do it again; fail it
                # with a reason before the broker's delivery limit drops it without one.
                reason = (
                    f"gave up after {deliveries} deliveries: each time, the worker "
                    f"running the job died or lost the broker"
                )
                seq = start.next_seq if start is not None else 0
                failed = Reply(offset=job.offset, seq=seq, kind=ReplyKind.ERROR, value=reason)
                await _publish_error(worker, failed)
                await self.move_to_dead(msg, reason)
                logger.warning("crash loop, job failed offset=%(offset)s", log)
                return
            result = await run_job(
                job,
                pipeline,
                worker.replies.publish_reply,
                start=start,
                retry=worker.retry,
                step_seconds=worker.step_seconds,
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
            logger.info("worker stopping; job handed back offset=%(offset)s", log)
            await msg.nack(requeue=True)
        elif result.outcome is Outcome.FAILED:
            await self.move_to_dead(msg, result.reason or "failed")
        else:
            await msg.ack()
        logger.info(
            "job %s offset=%s fn=%s steps_run=%s delivery=%s",
            result.outcome,
            job.offset,
            job.request.fn,
            result.steps_run,
            deliveries,
        )


def _delivery_count(msg: Message) -> int:
    """RabbitMQ's x-delivery-count (quorum queues): 0 on the first delivery."""
    count = (msg.headers or {}).get("x-delivery-count", 0)
    return count if isinstance(count, int) else 0


async def _resume_point(broker: RabbitBroker, worker: Worker, job: Job) -> Progress | None:
    """Ask the query side how far this redelivered job got; None (start over) if it can't say."""
    try:
        answer = await request_reply(
            broker,
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
