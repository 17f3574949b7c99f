"""What the ledger accepts, as plain rules: a reply is stored only when it can be true."""

import pytest

from contracts import JobState, Reply, ReplyKind
from contracts.messages import SEQ_WINDOW
from ledger.rules import JobView, StoreOutcome, after_storing, judge, needs_seqs_above


def reply(seq: int, kind: ReplyKind = ReplyKind.RESULT, offset: int = 7) -> Reply:
    return Reply(offset=offset, seq=seq, kind=kind, value=f"v{seq}")


RUNNING = JobView(JobState.RUNNING, next_seq=2, max_seq=1)
ENDED = JobView(JobState.DONE, next_seq=4, max_seq=3, final_seq=3, final_kind=ReplyKind.DONE)


def test_the_next_reply_of_a_running_job_is_accepted():
    assert judge(RUNNING, reply(2)) is None
    assert judge(JobView(JobState.QUEUED), reply(0)) is None


def test_an_offset_never_handed_out_is_refused():
    assert judge(None, reply(0)) is StoreOutcome.UNKNOWN_OFFSET


# NOTE: a progress reply is judged by its own rule (tests/unit/test_progress_rules.py)
@pytest.mark.parametrize("kind", [k for k in ReplyKind if k is not ReplyKind.PROGRESS])
def test_nothing_comes_after_the_final_reply(kind):
    assert judge(ENDED, reply(4, kind)) is StoreOutcome.AFTER_FINAL


def test_a_second_final_at_another_seq_is_refused():
    assert judge(ENDED, reply(2, ReplyKind.ERROR)) is StoreOutcome.SECOND_FINAL
    assert judge(ENDED, reply(3, ReplyKind.DONE)) is None  # the same one again: a duplicate


def test_a_final_reply_below_a_stored_seq_is_refused():
    assert judge(RUNNING, reply(0, ReplyKind.DONE)) is StoreOutcome.FINAL_BEFORE_LATER


def test_a_reply_far_beyond_what_pipelining_allows_is_refused():
    assert judge(RUNNING, reply(2 + SEQ_WINDOW - 1)) is None
    assert judge(RUNNING, reply(2 + SEQ_WINDOW)) is StoreOutcome.TOO_FAR_AHEAD


def test_every_refusal_says_why_with_offset_and_seq():
    for outcome in StoreOutcome:
        if outcome.refused:
            assert "7" in outcome.reason(reply(5))
            assert "5" in outcome.reason(reply(5))
    assert not StoreOutcome.STORED.refused
    assert not StoreOutcome.DUPLICATE.refused


def test_a_reply_in_order_moves_the_prefix_on():
    view = after_storing(RUNNING, reply(2))
    assert (view.state, view.next_seq, view.max_seq) == (JobState.RUNNING, 3, 2)


def test_a_reply_ahead_of_a_missing_one_leaves_the_prefix_where_it_is():
    view = after_storing(RUNNING, reply(4))
    assert (view.next_seq, view.max_seq) == (2, 4)
    assert needs_seqs_above(view, reply(2))


def test_closing_the_gap_moves_the_prefix_past_what_was_stored_ahead():
    ahead = JobView(JobState.RUNNING, next_seq=2, max_seq=4)
    view = after_storing(ahead, reply(2), stored_above=[3, 4])
    assert view.next_seq == 5
    holed = after_storing(ahead, reply(2), stored_above=[4])
    assert holed.next_seq == 3


def test_a_job_ends_when_its_final_reply_joins_the_prefix_not_when_it_is_stored():
    early_done = after_storing(RUNNING, reply(3, ReplyKind.DONE))
    assert early_done.state is JobState.RUNNING
    assert early_done.final_seq == 3
    done = after_storing(early_done, reply(2), stored_above=[3])
    assert (done.state, done.next_seq) == (JobState.DONE, 4)


def test_an_error_reply_ends_the_job_failed():
    view = after_storing(RUNNING, reply(2, ReplyKind.ERROR))
    assert view.state is JobState.FAILED
