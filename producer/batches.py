"""Scheduling a batch: the one code path behind POST /schedule/batch and jobcast.schedule.batch.

One ledger transaction records every job of the batch, one burst of confirmed publishes hands
them to RabbitMQ (all published, then every confirm awaited), and only then are the offsets
answered, in the request's order. All or nothing: if RabbitMQ does not confirm every job, no
offset is handed out and the batch's new jobs are discarded, but for those with an idempotency
key that are or may be queued, kept for the retry with the same keys.
"""

import asyncio
import logging
from collections.abc import Mapping

from contracts import BrokerUnavailableError, Job, JobRequest
from contracts.batches import BatchAccepted, BatchRequest, batch_tag
from contracts.control import due_at
from contracts.errors import PublishInDoubtError
from contracts.messages import utcnow
from ledger import Ledger
from producer.scheduler import PublishJob

logger = logging.getLogger(__name__)


class BatchScheduler:
    """Records a batch at once and hands its jobs to the broker in one confirmed burst."""

    def __init__(self, ledger: Ledger, publish_job: PublishJob) -> None:
        self._ledger = ledger
        self._publish_job = publish_job

    async def schedule(
        self, batch: BatchRequest, trace: dict[str, str] | None = None, owner: str | None = None
    ) -> BatchAccepted:
        """Record every job, publish the new ones, then answer with every offset.

        IdempotencyConflictError (nothing recorded) when an item's key was used for another
        request; BrokerUnavailableError (nothing handed out) when RabbitMQ did not confirm
        every job; DelayError when a run_at is out of bounds. `owner`: the API key's name
        every job of the batch belongs to (None with auth off).
        """
        items = batch.requests()
        now = utcnow()
        due = [due_at(request, now) for request, _ in items]
        placed = await self._ledger.create_jobs(items, due, owner=owner)
        jobs = [
            Job(offset=offset, request=request, trace=trace or {})
            for (offset, created), (request, _), at in zip(placed, items, due, strict=True)
            if created and at is None
        ]
        # NOTE: every publish first, then every confirm: RabbitMQ confirms a burst in a few
        # round trips, where one publish after the other would wait for each.
        outcomes = await asyncio.gather(
            *(self._publish_job(job) for job in jobs), return_exceptions=True
        )
        failed = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
        if failed:
            sent = {job.offset: outcome for job, outcome in zip(jobs, outcomes, strict=True)}
            await self._settle_failed(placed, items, sent)
            for outcome in failed:
                if not isinstance(outcome, BrokerUnavailableError):
                    raise outcome
            raise BrokerUnavailableError(
                f"RabbitMQ confirmed {len(jobs) - len(failed)} of the batch's {len(jobs)} jobs; "
                f"no offset was handed out ({failed[0]})"
            )
        logger.debug("scheduled a batch of %s (%s new)", len(placed), len(jobs))
        return BatchAccepted(
            offsets=[offset for offset, _ in placed],
            tag=None if batch.batch is None else batch_tag(batch.batch),
        )

    async def _settle_failed(
        self,
        placed: list[tuple[int, bool]],
        items: list[tuple[JobRequest, str | None]],
        outcomes: Mapping[int, object],
    ) -> None:
        """A batch RabbitMQ did not wholly confirm: its new jobs are forgotten, except those
        with an idempotency key that are or may be queued (confirmed, in doubt, or delayed):
        they are kept, an in-doubt one published again by the release loop, so the retry with
        the same keys answers their offsets (as for one job: producer/scheduler.py)."""
        forget: list[int] = []
        again: list[int] = []
        for (offset, created), (_, key) in zip(placed, items, strict=True):
            if not created:
                continue
            outcome = outcomes.get(offset)  # None: confirmed, or delayed (not published now)
            if key is None or not (outcome is None or isinstance(outcome, PublishInDoubtError)):
                forget.append(offset)
            elif outcome is not None:
                again.append(offset)
        await self._ledger.discard_jobs(forget)
        for offset in again:
            logger.warning("publish in doubt offset=%s (a batch's): released again", offset)
            await self._ledger.release_again(offset)
