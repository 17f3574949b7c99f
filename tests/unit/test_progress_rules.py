"""The ledger's rule for progress replies (ledger/progress.py), without a database: the newest
is kept, old news is dropped quietly, what no worker could send is refused."""

from datetime import UTC, datetime, timedelta

from contracts import JobState, Reply, ReplyKind
from contracts.messages import SEQ_WINDOW
from ledger.progress import judge_progress
from ledger.rules import JobView, StoreOutcome

T0 = datetime(2026, 1, 1, tzinfo=UTC)
RUNNING = JobView(state=JobState.RUNNING, next_seq=2, max_seq=1)


def tick(seq: int, at: datetime = T0, current: int = 1) -> Reply:
    return Reply(
        offset=3, seq=seq, kind=ReplyKind.PROGRESS, value={"current": current}, produced_at=at
    )


def test_the_first_tick_of_the_running_step_is_kept():
    assert judge_progress(RUNNING, None, tick(2)) is None


def test_a_later_tick_of_the_same_step_or_a_later_step_replaces_the_kept_one():
    assert judge_progress(RUNNING, (2, T0), tick(2, T0 + timedelta(milliseconds=1))) is None
    assert judge_progress(RUNNING, (2, T0), tick(3, T0 - timedelta(seconds=1))) is None


def test_an_older_or_repeated_tick_is_stale():
    assert judge_progress(RUNNING, (2, T0), tick(2, T0)) is StoreOutcome.STALE
    assert (
        judge_progress(RUNNING, (2, T0), tick(2, T0 - timedelta(seconds=1))) is StoreOutcome.STALE
    )
    assert judge_progress(RUNNING, (3, T0), tick(2, T0 + timedelta(hours=1))) is StoreOutcome.STALE


def test_a_tick_of_a_step_whose_result_is_recorded_is_stale():
    assert judge_progress(RUNNING, None, tick(1)) is StoreOutcome.STALE


def test_after_the_final_reply_a_tick_is_stale_or_refused_beyond_it():
    done = JobView(
        state=JobState.DONE, next_seq=4, max_seq=3, final_seq=3, final_kind=ReplyKind.DONE
    )
    assert judge_progress(done, None, tick(2)) is StoreOutcome.STALE
    assert judge_progress(done, None, tick(3)) is StoreOutcome.STALE
    assert judge_progress(done, None, tick(4)) is StoreOutcome.AFTER_FINAL
    assert StoreOutcome.AFTER_FINAL.refused
    assert not StoreOutcome.STALE.refused
    # the final reply recorded ahead of a missing seq: the job has ended all the same
    ahead = JobView(
        state=JobState.RUNNING, next_seq=1, max_seq=3, final_seq=3, final_kind=ReplyKind.DONE
    )
    assert judge_progress(ahead, None, tick(1)) is StoreOutcome.STALE


def test_an_unknown_offset_or_a_seq_far_ahead_is_refused():
    assert judge_progress(None, None, tick(0)) is StoreOutcome.UNKNOWN_OFFSET
    far = tick(RUNNING.next_seq + SEQ_WINDOW)
    assert judge_progress(RUNNING, None, far) is StoreOutcome.TOO_FAR_AHEAD


def test_a_time_without_a_zone_is_taken_as_utc_not_a_crash():
    naive = T0.replace(tzinfo=None) + timedelta(seconds=1)
    assert judge_progress(RUNNING, (2, T0), tick(2, naive)) is None
