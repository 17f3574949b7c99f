"""Releasing delayed jobs: the scheduled jobs whose time has come go to jobcast.jobs.

Every gateway runs one loop; the ledger hands each due job to one of them at a time
(`claim_due`, ledger/steering.py), which publishes it and, once RabbitMQ confirmed it, marks
it queued. A publish that is not confirmed leaves the job scheduled: it is claimed again when
its lease runs out. The ledger holds the jobs, so they survive a gateway restart.
"""

import asyncio
import logging

from contracts import Job, UnavailableError
from ledger import Ledger
from producer.scheduler import PublishJob

logger = logging.getLogger(__name__)

RELEASE_INTERVAL = 0.2
"""How often a gateway looks for due jobs: a delayed job starts at most this late (plus the
publish), well within the second promised."""
RELEASE_BATCH = 100
"""Due jobs claimed at once; more wait for the next round, which follows at once."""


class Releaser:
    """The release loop of one gateway: `run()` until cancelled."""

    def __init__(
        self, ledger: Ledger, publish_job: PublishJob, *, interval: float = RELEASE_INTERVAL
    ) -> None:
        self._ledger = ledger
        self._publish_job = publish_job
        self._interval = interval

    async def run(self) -> None:
        """Release due jobs for ever; a ledger or broker outage only delays them."""
        while True:
            try:
                released = await self.release_due()
            except UnavailableError as exc:
                logger.warning("delayed jobs wait: %s", exc)
                released = 0
            except Exception:  # a bug of ours: the loop must not die, or no delayed job starts
                logger.exception("releasing delayed jobs failed; trying again")
                released = 0
            if released < RELEASE_BATCH:
                await asyncio.sleep(self._interval)

    async def release_due(self) -> int:
        """Publish the due jobs this gateway could claim; how many were claimed."""
        claimed = await self._ledger.claim_due(RELEASE_BATCH)
        for offset, request in claimed:
            # NOTE: one at a time, in due order; a job whose publish fails stays claimed
            # until its lease runs out, then any gateway releases it.
            await self._publish_job(Job(offset=offset, request=request))
            await self._ledger.mark_released(offset)
            logger.debug("released offset=%s fn=%s", offset, request.fn)
        return len(claimed)
