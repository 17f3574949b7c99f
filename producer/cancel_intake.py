"""The AMQP cancel intake: CancelRequests on jobcast.cancel, answered like POST
/jobs/{offset}/cancel (with reply_to: a CancelAccepted, or a CancelRejected saying why).

A request that is no CancelRequest goes to jobcast.dead with the reason; one for an offset
never handed out or a job already finished is only answered so (as HTTP's 404 and 409);
while the ledger is down it waits, unacked; while the broker does not confirm the
announcement, it goes back to the queue (the cancel is recorded already; carrying it out
again is harmless).
"""

import logging

from contracts import BrokerUnavailableError, UnknownOffsetError
from contracts.control import (
    CONTROL_MESSAGE_BYTES,
    CancelRejected,
    CancelRequest,
    JobFinishedError,
)
from contracts.topology import CANCEL_QUEUE
from ledger.outages import while_ledger_down
from messaging.answers import Answers
from messaging.consumer import AroundConsume, Consumer, DeadLetter, Message, nothing_around
from producer.cancelling import Canceller
from producer.submitters import (
    SubmissionRefusedError,
    Submitters,
    parsed,
    refuse,
    submitter,
)

logger = logging.getLogger(__name__)


class CancelIntake(Consumer):
    """Consumes jobcast.cancel and cancels what it names."""

    def __init__(
        self,
        canceller: Canceller,
        dead_letter: DeadLetter,
        *,
        prefetch: int = 16,
        around: AroundConsume = nothing_around,
        submitters: Submitters | None = None,
        answers: Answers | None = None,
    ) -> None:
        super().__init__(
            CANCEL_QUEUE, dead_letter, prefetch=prefetch, around=around, answers=answers
        )
        self._canceller = canceller
        self._submitters = submitters
        """With JOBCAST_AUTH=on: who sent a cancel (x-jobcast-key); None: auth off."""

    async def handle(self, message: Message) -> None:
        """Cancel the job; with reply_to, answer with its state (or why not)."""
        try:
            await self._cancel(message)
        except SubmissionRefusedError as refused:
            await refuse(self, message, refused, CancelRejected)

    async def _cancel(self, message: Message) -> None:
        request = parsed(
            message.body, CancelRequest, CONTROL_MESSAGE_BYTES, "cancel request", say_limit=False
        )
        if not await self._may_cancel(message, request.offset):
            return
        try:
            accepted = await while_ledger_down(self._canceller.cancel, request.offset)
        except (UnknownOffsetError, JobFinishedError) as exc:
            # NOTE: an answer, not a poison message: as HTTP's 404 and 409, nothing to keep.
            error = "unknown_offset" if isinstance(exc, UnknownOffsetError) else "finished"
            await self.ack(message)
            await self.answer(message, CancelRejected(error=error, detail=str(exc)))
            return
        except BrokerUnavailableError:
            await message.nack(requeue=True)  # again once the broker confirms; no answer
            return
        await self.ack(message)
        await self.answer(message, accepted)

    async def _may_cancel(self, message: Message, offset: int) -> bool:
        """A valid key that owns the job (or an admin's), or auth off; SubmitterRefusedError
        without a valid key. Another key's job is answered as an unknown offset (nothing to
        learn), and False."""
        principal = await submitter(self._submitters, message.headers)
        if self._submitters is None or principal is None:
            return True
        if await while_ledger_down(self._submitters.may_change, principal, offset):
            return True
        await self.ack(message)
        detail = str(UnknownOffsetError(offset))
        await self.answer(message, CancelRejected(error="unknown_offset", detail=detail))
        return False
