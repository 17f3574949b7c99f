"""What to do with a delivered job: decided here, in plain code; settled by the job consumer.

consumer/job_consumer.py gathers what it knows of a message (its bytes and headers, its
crashes, where the query side says the job got to), asks these functions, and does what they
return: publish an error reply, ack, dead-letter, run, or hand the job back.
"""

from dataclasses import dataclass

from consumer.pipelines import Pipeline, Registry
from consumer.runner import Outcome, RunResult, cancelled_reply
from contracts import Job, Progress, Reply, ReplyKind, UnknownPipelineError
from contracts.errors import DeadLetterReason, RefusedMessageError
from contracts.signing import Signer, signed_job


@dataclass(frozen=True)
class Run:
    """Run the pipeline from `start` (None: from its first step)."""

    pipeline: Pipeline
    start: Progress | None


@dataclass(frozen=True)
class Fail:
    """Fail the job unrun: publish `reply` (its error), then dead-letter the message."""

    reply: Reply
    reason: DeadLetterReason
    detail: str


@dataclass(frozen=True)
class GiveUp:
    """Dead-letter the message and publish nothing: there is no job to answer for, or the run
    already published the job's error reply."""

    reason: DeadLetterReason
    detail: str


@dataclass(frozen=True)
class Ack:
    """Ack the message: nothing is left to do."""


@dataclass(frozen=True)
class Cancel:
    """The job was cancelled: publish `reply` (its `cancelled` final), run nothing, then ack."""

    reply: Reply


@dataclass(frozen=True)
class HandBack:
    """Give the job to the next worker as a new message (this one is stopping): the ledger
    should hold its replies up to `next_seq` first, so the next worker resumes after them."""

    next_seq: int


@dataclass(frozen=True)
class Delivered:
    """What is known of a delivered job before anyone asks where it got to."""

    job: Job
    crashes: int
    """Its crashes so far, carried over from hand-backs and counted by RabbitMQ, at most the
    cap (consumer.deliveries.crashes)."""
    may_have_run: bool
    """Redelivered, or handed back: a worker may have run some of its steps."""
    cancel_heard: bool = False
    """A control message said the job was cancelled."""
    may_have_missed_cancel: bool = False
    """The job is older than this worker's hearing of control messages: a cancel of it may
    have been sent unheard (consumer/cancels.py, Cancels.may_have_missed)."""


def read_job(body: bytes, signature: object, signer: Signer) -> Job | GiveUp:
    """The job a message carries, or why it is refused unread: too large, not signed by a
    gateway, or not a job."""
    # NOTE: no error reply for a refused job: one no gateway signed names an offset it does
    # not own.
    try:
        return signed_job(body, signature, signer)
    except RefusedMessageError as exc:
        return GiveUp(exc.reason, exc.detail)


def needs_resume_point(delivered: Delivered, registry: Registry) -> bool:
    """Whether to ask the query side where the job got to before deciding: only if some of
    its steps may have run or a cancel of it may have gone unheard, and only for a job this
    worker can run at all."""
    return (
        delivered.may_have_run or delivered.may_have_missed_cancel
    ) and delivered.job.request.fn in registry


def decide(
    delivered: Delivered, registry: Registry, start: Progress | None, *, max_deliveries: int
) -> Run | Fail | Ack | Cancel | HandBack:
    """What to do with a job read whole: `start` is where the query side says it got to (None
    when not asked, or when it could not say: the job starts over)."""
    job = delivered.job
    if start is not None and start.finished:
        return Ack()
    if delivered.cancel_heard or (start is not None and start.cancel_requested):
        # NOTE: the ledger's answer or the control message: either way no step of it runs
        # here. Its final reply may be recorded already (the gateway ends a delayed job that
        # was cancelled while being released): the same cancel again is stored once.
        if start is None and delivered.may_have_run:
            # NOTE: its cancelled reply must come after its last recorded step, and nobody
            # said where that is: the job goes to the back of the queue, to ask again.
            return HandBack(next_seq=0)
        seq = start.next_seq if start is not None else 0
        return Cancel(cancelled_reply(job.offset, seq))
    try:
        pipeline = registry.get(job.request.fn)
    except UnknownPipelineError as exc:
        return _fail(job, 0, DeadLetterReason.UNKNOWN_PIPELINE, str(exc))
    if delivered.crashes >= max_deliveries:
        # NOTE: a job that took its worker down this often will do it again; fail it with a
        # reason before the broker's delivery limit drops it without one. Only crashes count:
        # a clean hand-back does not (consumer/deliveries.py).
        reason = (
            f"gave up after {delivered.crashes} deliveries: each time, the worker "
            f"running the job died or lost the broker"
        )
        seq = start.next_seq if start is not None else 0
        return _fail(job, seq, DeadLetterReason.CRASH_LOOP, reason)
    return Run(pipeline, start)


def after_run(result: RunResult, start: Progress | None) -> Ack | GiveUp | HandBack:
    """What to do with the message once its run returned."""
    if result.outcome is Outcome.HANDED_BACK:
        done_before = start.next_seq if start is not None else 0
        return HandBack(next_seq=done_before + result.steps_run)
    if result.outcome is Outcome.FAILED:
        return GiveUp(DeadLetterReason.STEP_FAILED, result.reason or "failed")
    return Ack()


def _fail(job: Job, seq: int, reason: DeadLetterReason, detail: str) -> Fail:
    error = Reply(offset=job.offset, seq=seq, kind=ReplyKind.ERROR, value=detail)
    return Fail(error, reason, detail)
