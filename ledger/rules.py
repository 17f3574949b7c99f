"""What the ledger accepts: a reply is stored only when it can be true of its job.

Plain functions over a job's bookkeeping (`JobView`), the same for every database, so each rule
is unit tested without one. A reply may arrive twice (redelivery), late (another gateway
recorded the next one first) or forged; only the first two are stored, once.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from contracts import JobState, Reply, ReplyKind
from contracts.messages import SEQ_WINDOW


class StoreOutcome(StrEnum):
    """What storing one reply did."""

    STORED = "stored"
    DUPLICATE = "duplicate"
    """That (offset, seq) was stored before; the copy was dropped."""
    UNKNOWN_OFFSET = "unknown_offset"
    """No job has that offset; nothing was stored."""
    AFTER_FINAL = "after_final"
    """The job already ended with an earlier seq; nothing comes after its final reply."""
    SECOND_FINAL = "second_final"
    """The job already has a final reply at another seq."""
    FINAL_BEFORE_LATER = "final_before_later"
    """A final reply with a seq below one already stored."""
    TOO_FAR_AHEAD = "too_far_ahead"
    """Further ahead of the job's first missing seq than a worker ever publishes."""
    STALE = "stale"
    """A progress reply that is old news (ledger/progress.py): dropped, nothing stored."""
    CANCEL_NOT_REQUESTED = "cancel_not_requested"
    """A `cancelled` final reply for a job nobody asked to cancel."""

    @property
    def refused(self) -> bool:
        """True when the reply cannot be true of its job: it is dead-lettered, never stored."""
        return self not in (StoreOutcome.STORED, StoreOutcome.DUPLICATE, StoreOutcome.STALE)

    def reason(self, reply: Reply) -> str:
        """Why `reply` was refused, for the dead letter's x-jobcast-reason."""
        if self is StoreOutcome.UNKNOWN_OFFSET:
            return f"reply for offset {reply.offset}, never handed out (seq {reply.seq})"
        why = {
            StoreOutcome.AFTER_FINAL: "comes after the job's final reply",
            StoreOutcome.SECOND_FINAL: f"is a second final reply ({reply.kind.value})",
            StoreOutcome.FINAL_BEFORE_LATER: "is a final reply below a seq already stored",
            StoreOutcome.TOO_FAR_AHEAD: f"is more than {SEQ_WINDOW} ahead of the first missing seq",
            StoreOutcome.CANCEL_NOT_REQUESTED: "cancels a job nobody asked to cancel",
        }.get(self, self.value)
        return f"refused reply: seq {reply.seq} of offset {reply.offset} {why}"


@dataclass(frozen=True)
class JobView:
    """A job's bookkeeping in the ledger: how far its replies got.

    Replies below `next_seq` are all stored: that prefix is all any reader is shown, so a list
    or a stream never shows seq n+1 before seq n.
    """

    state: JobState
    next_seq: int = 0
    """The first seq not stored yet."""
    max_seq: int = -1
    """The highest seq stored (-1: none)."""
    final_seq: int | None = None
    final_kind: ReplyKind | None = None
    cancel_requested: bool = False
    """Cancelling was asked for: a `cancelled` final reply may end the job."""


def judge(view: JobView | None, reply: Reply) -> StoreOutcome | None:
    """Why `reply` must be refused, or None when it may be stored (if not a duplicate);
    DUPLICATE for a `cancelled` reply of a job that has ended so already."""
    if view is None:
        return StoreOutcome.UNKNOWN_OFFSET
    if reply.kind is ReplyKind.CANCELLED and view.final_kind is ReplyKind.CANCELLED:
        # NOTE: the gateway ended a delayed job while another gateway was releasing it, and the
        # worker that took it ends it too: one cancel, stored once.
        return StoreOutcome.DUPLICATE
    if view.final_seq is not None:
        if reply.seq > view.final_seq:
            return StoreOutcome.AFTER_FINAL
        if reply.is_final and reply.seq != view.final_seq:
            return StoreOutcome.SECOND_FINAL
        return None
    if reply.kind is ReplyKind.CANCELLED and not view.cancel_requested:
        return StoreOutcome.CANCEL_NOT_REQUESTED
    if reply.is_final and reply.seq < view.max_seq:
        return StoreOutcome.FINAL_BEFORE_LATER
    if reply.seq >= view.next_seq + SEQ_WINDOW:
        return StoreOutcome.TOO_FAR_AHEAD
    return None


def needs_seqs_above(view: JobView, reply: Reply) -> bool:
    """True when storing `reply` closes the gap at the prefix's end and later seqs are stored:
    the ledger then reads them (`stored_above`) to move `next_seq` past them."""
    return reply.seq == view.next_seq and view.max_seq > reply.seq


def after_storing(view: JobView, reply: Reply, stored_above: Iterable[int] = ()) -> JobView:
    """The job's bookkeeping once `reply` is stored; `stored_above`: the seqs above it already
    stored, ascending (needed only when `needs_seqs_above`)."""
    next_seq = view.next_seq
    if reply.seq == next_seq:
        next_seq += 1
        for seq in stored_above:
            if seq != next_seq:
                break
            next_seq += 1
    final_seq, final_kind = view.final_seq, view.final_kind
    if reply.is_final:
        final_seq, final_kind = reply.seq, reply.kind
    return JobView(
        state=_state(next_seq, final_seq, final_kind),
        next_seq=next_seq,
        max_seq=max(view.max_seq, reply.seq),
        final_seq=final_seq,
        final_kind=final_kind,
        cancel_requested=view.cancel_requested,
    )


class CancelOutcome(StrEnum):
    """What asking to cancel a job did."""

    ENDED = "ended"
    """A delayed job still waiting for its time: the gateway recorded its final `cancelled`
    reply now, and it is never released."""
    REQUESTED = "requested"
    """Queued or running: the cancel is recorded, and the worker that takes or runs the job
    ends it before its next step (a queued one before its first)."""
    ALREADY = "already"
    """It was cancelled before: nothing changed."""
    FINISHED = "finished"
    """It ended `done` or `failed`: nothing changed (HTTP 409)."""


def judge_cancel(view: JobView) -> CancelOutcome:
    """What cancelling a job with this bookkeeping does."""
    if view.final_seq is not None:
        if view.final_kind is ReplyKind.CANCELLED:
            return CancelOutcome.ALREADY
        return CancelOutcome.FINISHED
    # NOTE: only a job no worker can hold yet is ended here. A queued one may have been
    # taken a moment ago, its first result on the way: ending it at seq 0 would drop that
    # result, so its worker ends it, after its last recorded step.
    if view.state is JobState.SCHEDULED and view.max_seq < 0:
        return CancelOutcome.ENDED
    return CancelOutcome.REQUESTED


def cancelled_reply(offset: int, view: JobView) -> Reply:
    """The final reply the gateway records for a delayed job it cancels while it waits."""
    return Reply(offset=offset, seq=view.next_seq, kind=ReplyKind.CANCELLED, value="cancelled")


def _state(next_seq: int, final_seq: int | None, final_kind: ReplyKind | None) -> JobState:
    """A job has ended once its final reply is part of the prefix, not when it is stored."""
    if final_seq is not None and next_seq > final_seq:
        return {ReplyKind.ERROR: JobState.FAILED, ReplyKind.CANCELLED: JobState.CANCELLED}.get(
            final_kind,  # type: ignore[arg-type]
            JobState.DONE,
        )
    return JobState.RUNNING
