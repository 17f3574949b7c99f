"""Scheduling a job: the one code path behind POST /schedule and jobcast.schedule."""

import logging
from collections.abc import Awaitable, Callable

from contracts import BrokerUnavailableError, Job, JobAccepted, JobRequest
from contracts.control import due_at
from contracts.errors import PublishInDoubtError
from contracts.messages import utcnow
from ledger import Ledger

logger = logging.getLogger(__name__)

PublishJob = Callable[[Job], Awaitable[None]]
"""Puts a job on jobcast.jobs and returns once RabbitMQ confirmed it."""


class Scheduler:
    """Allocates offsets durably and hands jobs to the broker."""

    def __init__(self, ledger: Ledger, publish_job: PublishJob) -> None:
        self._ledger = ledger
        self._publish_job = publish_job

    async def schedule(
        self,
        request: JobRequest,
        idempotency_key: str | None = None,
        trace: dict[str, str] | None = None,
        owner: str | None = None,
    ) -> JobAccepted:
        """Record the job, publish it, then answer with its offset.

        If RabbitMQ does not confirm, BrokerUnavailableError is raised and the job forgotten:
        the caller never holds an offset for a job that will not run. Unless the publish is in
        doubt (PublishInDoubtError: sent, the confirm lost with its node) and the request has
        an idempotency key: then the job is published again by the release loop, and a retry
        with the key answers its offset. A delayed request
        (`run_at`, `delay_seconds`) is only recorded, `scheduled`: the release loop
        (producer/release.py) publishes it when due; DelayError if its time is out of bounds.
        `owner`: the API key's name it belongs to (None with auth off).
        """
        due = due_at(request, utcnow())
        offset, created = await self._ledger.create_job(
            request, idempotency_key, due_at=due, owner=owner
        )
        if not created:
            logger.info("idempotent repeat offset=%s fn=%s", offset, request.fn)
            return JobAccepted(offset=offset)
        if due is not None:
            logger.debug("scheduled offset=%s fn=%s for %s", offset, request.fn, due)
            return JobAccepted(offset=offset)
        try:
            await self._publish_job(Job(offset=offset, request=request, trace=trace or {}))
        except PublishInDoubtError:
            if idempotency_key is None:
                await self._ledger.discard_job(offset)
            else:
                # NOTE: it may be on jobcast.jobs (the node took it, then died before its
                # confirm): forgetting it would leave a job running under an offset its caller
                # never gets back, its results refused. With a key, the caller gets this
                # offset by retrying, so it is kept and published again (at least once).
                logger.warning("publish in doubt offset=%s: released again", offset)
                await self._ledger.release_again(offset)
            raise
        except BrokerUnavailableError:
            await self._ledger.discard_job(offset)
            raise
        # NOTE: debug, not info: one line per job was measurable at full load (bench/).
        logger.debug("scheduled offset=%s fn=%s", offset, request.fn)
        return JobAccepted(offset=offset)
