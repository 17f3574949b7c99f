"""Cancelling a job: the one code path behind POST /jobs/{offset}/cancel and jobcast.cancel.

The ledger is the truth: the cancel is recorded there first (a delayed job still waiting
ends `cancelled` at once; ledger/rules.py, judge_cancel), then announced to every worker on
jobcast.control, so the one running the job stops before its next step, and whichever takes
it from the queue runs none. A worker that misses the announcement (away, or started later)
learns it from the ledger when it asks where the job resumes.
"""

import logging
from collections.abc import Awaitable, Callable

from contracts.control import CancelAccepted, CancelJob, JobFinishedError
from ledger import Ledger
from ledger.rules import CancelOutcome

logger = logging.getLogger(__name__)

Announce = Callable[[CancelJob], Awaitable[None]]
"""Publishes a control message on jobcast.control; returns once RabbitMQ confirmed it."""


class Canceller:
    """Records cancel requests in the ledger and announces them to the workers."""

    def __init__(self, ledger: Ledger, announce: Announce, ended: Callable[[int], None]) -> None:
        self._ledger = self.ledger = ledger
        self._announce = announce
        self._ended = ended

    async def cancel(self, offset: int) -> CancelAccepted:
        """Cancel job `offset`: UnknownOffsetError if never handed out, JobFinishedError if
        it ended done or failed; BrokerUnavailableError if the announcement was not confirmed
        (the cancel is recorded all the same: asking again is harmless and announces again)."""
        outcome, state = await self._ledger.cancel_job(offset)
        if outcome is CancelOutcome.FINISHED:
            raise JobFinishedError(offset, state)
        if outcome is CancelOutcome.ENDED:
            self._ended(offset)  # wake this gateway's followers of the job
        # NOTE: also when the gateway ended it (another gateway may be releasing it just now),
        # and again when asked again (the first announcement may not have been confirmed).
        await self._announce(CancelJob(offset=offset))
        logger.info("cancel offset=%s: %s, now %s", offset, outcome.value, state.value)
        return CancelAccepted(offset=offset, state=state)
