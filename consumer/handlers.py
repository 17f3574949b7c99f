"""The worker's broker edge: take a job from jobcast.jobs, run it, ack after the last reply."""

import asyncio
import logging

from faststream import AckPolicy
from faststream.rabbit import Channel, RabbitRouter
from pydantic import ValidationError

from consumer.runner import Outcome, run_job
from consumer.worker import Worker
from contracts import Job, Progress, ProgressQuery, Reply, ReplyKind, UnknownPipelineError
from contracts.context import RabbitBroker, RabbitMessage
from contracts.errors import BrokerUnavailableError, describe
from contracts.publishing import dead_letter, request_reply
from contracts.topology import JOBS_QUEUE, PROGRESS_QUEUE

logger = logging.getLogger(__name__)


def worker_router(worker: Worker) -> RabbitRouter:
    """A router whose one handler runs jobs from jobcast.jobs."""
    router = RabbitRouter()

    @router.subscriber(
        JOBS_QUEUE,
        channel=Channel(prefetch_count=worker.concurrency),
        ack_policy=AckPolicy.MANUAL,
        title="jobcast.jobs:on_job",
    )
    async def on_job(msg: RabbitMessage, broker: RabbitBroker) -> None:
        """Run the job's pipeline; publish each step's Reply on jobcast.replies."""
        try:
            job = Job.model_validate_json(msg.body)
        except ValidationError as exc:
            await dead_letter(
                broker, msg, reason=f"invalid job: {describe(exc)}", source=JOBS_QUEUE
            )
            return

        deliveries = int(msg.headers.get("x-delivery-count", 0) or 0)
        log = {"offset": job.offset, "fn": job.request.fn, "delivery": deliveries}
        worker.in_flight += 1
        try:
            try:
                pipeline = worker.registry.get(job.request.fn)
            except UnknownPipelineError as exc:
                await worker.replies.publish(
                    Reply(offset=job.offset, seq=0, kind=ReplyKind.ERROR, value=str(exc))
                )
                await dead_letter(broker, msg, reason=str(exc), source=JOBS_QUEUE)
                return
            start = (
                await _resume_point(broker, worker, job) if msg.raw_message.redelivered else None
            )
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
                await worker.replies.publish(
                    Reply(offset=job.offset, seq=seq, kind=ReplyKind.ERROR, value=reason)
                )
                await dead_letter(broker, msg, reason=reason, source=JOBS_QUEUE)
                logger.warning("crash loop, job failed offset=%(offset)s", log)
                return
            result = await run_job(
                job,
                pipeline,
                worker.replies.publish,
                start=start,
                retry=worker.retry,
                step_seconds=worker.step_seconds,
                stopping=worker.stopping,
                observe=worker.observe,
                confirm_timeout=worker.publish_timeout,
            )
        except BrokerUnavailableError:
            logger.warning("broker lost mid-job; it will be redelivered offset=%(offset)s", log)
            await _quietly_nack(msg)
            return
        finally:
            worker.in_flight -= 1
        if result.outcome is Outcome.HANDED_BACK:
            logger.info("worker stopping; job handed back offset=%(offset)s", log)
            await msg.nack(requeue=True)
        elif result.outcome is Outcome.FAILED:
            await dead_letter(broker, msg, reason=result.reason or "failed", source=JOBS_QUEUE)
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

    return router


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
            await worker.replies.publish(reply)
    except TimeoutError:
        raise BrokerUnavailableError("RabbitMQ did not confirm the error reply") from None


async def _quietly_nack(msg: RabbitMessage) -> None:
    try:
        await msg.nack(requeue=True)
    except Exception:  # the channel is gone: the broker requeues the delivery itself
        logger.debug("nack after broker loss failed", exc_info=True)
