"""Cancel and delayed start, decided without a broker or a database: what the ledger accepts,
what a cancel does to a job's bookkeeping, when a delayed job is due, what a worker does with
a cancelled job, and how a run stops."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from consumer.cancels import Cancels
from consumer.decisions import Ack, Cancel, Delivered, HandBack, Run, decide, needs_resume_point
from consumer.pipelines import Pipeline, Registry, StepContext
from consumer.runner import Outcome, run_job
from contracts import Job, JobRequest, JobState, Progress, Reply, ReplyKind
from contracts.control import DelayError, due_at
from contracts.messages import CLOCK_SKEW_SECONDS, MAX_DELAY_SECONDS, utcnow
from ledger.rules import (
    CancelOutcome,
    JobView,
    StoreOutcome,
    after_storing,
    cancelled_reply,
    judge,
    judge_cancel,
)

REQUEST = JobRequest(deployment="Docker", framework="FastAPI", fn="three")
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def reply(seq: int, kind: ReplyKind = ReplyKind.RESULT) -> Reply:
    return Reply(offset=7, seq=seq, kind=kind, value="v")


# -- the ledger's rules --------------------------------------------------------------------


def test_a_delayed_job_still_waiting_is_ended_by_the_cancel_itself():
    view = JobView(state=JobState.SCHEDULED)
    assert judge_cancel(view) is CancelOutcome.ENDED
    final = cancelled_reply(7, view)
    assert (final.seq, final.kind, final.is_final) == (0, ReplyKind.CANCELLED, True)
    asked = JobView(state=JobState.SCHEDULED, cancel_requested=True)
    assert judge(asked, final) is None
    assert after_storing(asked, final).state is JobState.CANCELLED


def test_a_queued_job_is_left_to_the_worker_that_takes_it():
    # it may have been taken a moment ago, its first result on the way
    assert judge_cancel(JobView(state=JobState.QUEUED)) is CancelOutcome.REQUESTED


def test_a_running_job_is_only_asked_and_its_worker_ends_it_after_its_last_step():
    view = after_storing(JobView(state=JobState.QUEUED), reply(0))
    assert judge_cancel(view) is CancelOutcome.REQUESTED
    asked = JobView(**{**view.__dict__, "cancel_requested": True})
    assert judge_cancel(asked) is CancelOutcome.REQUESTED  # twice is harmless
    ended = after_storing(asked, reply(1, ReplyKind.CANCELLED))
    assert (ended.state, ended.final_seq) == (JobState.CANCELLED, 1)
    assert judge_cancel(ended) is CancelOutcome.ALREADY
    assert judge(ended, reply(2)) is StoreOutcome.AFTER_FINAL


@pytest.mark.parametrize("kind", [ReplyKind.DONE, ReplyKind.ERROR])
def test_a_finished_job_cannot_be_cancelled(kind):
    view = after_storing(JobView(state=JobState.RUNNING, next_seq=1, max_seq=0), reply(1, kind))
    assert judge_cancel(view) is CancelOutcome.FINISHED


def test_a_cancelled_reply_is_stored_only_for_a_job_someone_asked_to_cancel():
    assert judge(JobView(state=JobState.QUEUED), reply(0, ReplyKind.CANCELLED)) is (
        StoreOutcome.CANCEL_NOT_REQUESTED
    )
    assert StoreOutcome.CANCEL_NOT_REQUESTED.refused
    assert "nobody asked" in StoreOutcome.CANCEL_NOT_REQUESTED.reason(reply(0))


def test_a_second_cancelled_reply_of_a_cancelled_job_is_a_harmless_duplicate():
    ended = after_storing(
        JobView(state=JobState.SCHEDULED, cancel_requested=True), reply(0, ReplyKind.CANCELLED)
    )
    outcome = judge(ended, reply(1, ReplyKind.CANCELLED))
    assert outcome is StoreOutcome.DUPLICATE
    assert not outcome.refused


def test_cancelled_is_a_final_state_and_a_final_reply():
    assert JobState.CANCELLED.is_final
    assert not JobState.SCHEDULED.is_final
    assert reply(0, ReplyKind.CANCELLED).is_final


# -- delayed start ---------------------------------------------------------------------------


def test_a_request_without_a_delay_is_the_same_message_as_before():
    assert REQUEST.model_dump_json() == (
        '{"deployment":"Docker","framework":"FastAPI","fn":"three"}'
    )
    assert due_at(REQUEST, NOW) is None


def test_a_delay_or_a_start_time_sets_when_the_job_is_due():
    delayed = REQUEST.model_copy(update={"delay_seconds": 90})
    assert due_at(delayed, NOW) == NOW + timedelta(seconds=90)
    at = JobRequest.model_validate({**REQUEST.model_dump(), "run_at": "2026-11-30T13:00:00Z"})
    assert due_at(at, NOW) == NOW + timedelta(hours=1)
    a_little_late = NOW - timedelta(seconds=CLOCK_SKEW_SECONDS - 1)
    late = JobRequest.model_validate({**REQUEST.model_dump(), "run_at": a_little_late})
    assert due_at(late, NOW) == NOW  # a caller's clock a little behind: at once


@pytest.mark.parametrize(
    "run_at",
    [
        NOW - timedelta(seconds=CLOCK_SKEW_SECONDS + 1),
        NOW + timedelta(seconds=MAX_DELAY_SECONDS + 1),
    ],
)
def test_a_start_time_too_far_behind_or_ahead_is_refused(run_at):
    request = JobRequest.model_validate({**REQUEST.model_dump(), "run_at": run_at})
    with pytest.raises(DelayError):
        due_at(request, NOW)


@pytest.mark.parametrize(
    "fields",
    [
        {"delay_seconds": -1},
        {"delay_seconds": MAX_DELAY_SECONDS + 1},
        {"delay_seconds": "nan"},
        {"run_at": "2026-11-30T13:00:00"},  # no timezone
        {"run_at": "2026-11-30T13:00:00Z", "delay_seconds": 1},
    ],
)
def test_a_delay_out_of_bounds_is_refused_by_the_contract(fields):
    with pytest.raises(ValidationError):
        JobRequest.model_validate({**REQUEST.model_dump(), **fields})


# -- the worker -------------------------------------------------------------------------------


async def _step(ctx: StepContext) -> str:
    return "ok"


REGISTRY = Registry([Pipeline("three", steps=[_step, _step, _step])])


def delivered(*, heard: bool = False, missed: bool = False, may_have_run: bool = False):
    return Delivered(
        Job(offset=7, request=REQUEST),
        crashes=0,
        may_have_run=may_have_run,
        cancel_heard=heard,
        may_have_missed_cancel=missed,
    )


def test_a_worker_runs_no_step_of_a_job_it_heard_was_cancelled():
    decision = decide(delivered(heard=True), REGISTRY, None, max_deliveries=8)
    assert isinstance(decision, Cancel)
    assert (decision.reply.seq, decision.reply.kind) == (0, ReplyKind.CANCELLED)


def test_a_redelivered_job_the_ledger_says_was_cancelled_ends_after_its_last_step():
    start = Progress(offset=7, next_seq=2, previous="v", cancel_requested=True)
    decision = decide(delivered(may_have_run=True), REGISTRY, start, max_deliveries=8)
    assert isinstance(decision, Cancel)
    assert decision.reply.seq == 2
    ended = Progress(offset=7, next_seq=1, finished=True, cancel_requested=True)
    assert decide(delivered(may_have_run=True), REGISTRY, ended, max_deliveries=8) == Ack()


def test_a_cancelled_job_whose_resume_point_is_unknown_goes_back_to_ask_again():
    decision = decide(delivered(heard=True, may_have_run=True), REGISTRY, None, max_deliveries=8)
    assert isinstance(decision, HandBack)


def test_a_job_older_than_the_workers_hearing_is_checked_against_the_ledger():
    assert needs_resume_point(delivered(missed=True), REGISTRY)
    assert not needs_resume_point(delivered(), REGISTRY)
    fresh = Progress(offset=7, next_seq=0)
    assert isinstance(decide(delivered(missed=True), REGISTRY, fresh, max_deliveries=8), Run)


def test_cancels_heard_are_remembered_and_a_gap_in_hearing_is_known():
    cancels = Cancels(remembered=2)
    now = datetime.now(UTC)
    assert cancels.may_have_missed(now)  # not listening yet
    cancels.listening()
    assert cancels.may_have_missed(now - timedelta(seconds=10))
    assert not cancels.may_have_missed(now + timedelta(seconds=10))
    for offset in (1, 2, 3):
        cancels.heard(offset)
    assert (1 in cancels, 2 in cancels, 3 in cancels) == (False, True, True)


async def test_a_cancel_heard_during_a_step_is_seen_by_it_and_no_further_step_runs():
    cancels = Cancels()
    seen: list[bool] = []
    ran: list[int] = []

    async def step(ctx: StepContext) -> str:
        ran.append(ctx.seq)
        if ctx.seq == 1:
            cancels.heard(7)
            seen.append(ctx.cancelled.is_set())
        return f"r{ctx.seq}"

    published: list[Reply] = []

    async def publish(r: Reply) -> None:
        published.append(r)

    with cancels.running(7) as cancelled:
        result = await run_job(
            Job(offset=7, request=REQUEST),
            Pipeline("three", steps=[step] * 3),
            publish,
            cancelled=cancelled,
        )
    assert result.outcome is Outcome.CANCELLED
    assert (ran, seen) == ([0, 1], [True])
    assert [(r.seq, r.kind.value, r.value) for r in published] == [
        (0, "result", "r0"),
        (1, "result", "r1"),
        (2, "cancelled", "cancelled"),
    ]


async def test_a_step_that_stops_early_by_raising_is_not_retried_and_records_nothing():
    cancelled = asyncio.Event()
    attempts: list[int] = []

    async def step(ctx: StepContext) -> str:
        attempts.append(ctx.attempt)
        cancelled.set()
        raise RuntimeError("stopped early")

    published: list[Reply] = []

    async def publish(r: Reply) -> None:
        published.append(r)

    result = await run_job(
        Job(offset=7, request=REQUEST), Pipeline("one", steps=[step]), publish, cancelled=cancelled
    )
    assert (result.outcome, attempts) == (Outcome.CANCELLED, [1])
    assert [(r.seq, r.kind.value) for r in published] == [(0, "cancelled")]


def test_once_the_ledger_listed_the_cancels_missed_no_older_job_is_checked_again():
    cancels = Cancels()
    cancels.listening()
    old = utcnow() - timedelta(seconds=10)
    assert cancels.catching_up
    assert cancels.may_have_missed(old)
    cancels.caught_up([7, 9], cancels.generation)
    assert not cancels.catching_up
    assert not cancels.may_have_missed(old)
    assert 7 in cancels
    assert 9 in cancels
    assert 8 not in cancels


def test_a_list_read_across_a_reconnect_is_not_trusted():
    cancels = Cancels()
    cancels.listening()
    asked_at = cancels.generation
    cancels.listening()  # reconnected while the question was out: a cancel may be unheard
    cancels.caught_up([7], asked_at)
    assert cancels.catching_up
    assert cancels.may_have_missed(utcnow() - timedelta(seconds=10))
    cancels.caught_up([], cancels.generation)
    assert not cancels.may_have_missed(utcnow() - timedelta(seconds=10))
    cancels.listening()  # a later reconnect: checked again until the ledger says
    assert cancels.may_have_missed(utcnow() - timedelta(seconds=10))


def test_a_list_before_hearing_anything_is_not_trusted():
    cancels = Cancels()
    cancels.caught_up([7], cancels.generation)
    assert cancels.may_have_missed(utcnow())
