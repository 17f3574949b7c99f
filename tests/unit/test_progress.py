"""Where a redelivered job resumes, from the replies the ledger holds."""

from types import SimpleNamespace

from contracts import Reply, ReplyKind
from query.progress import progress


class Recorded:
    def __init__(self, *seqs: int, cancel_requested: bool = False) -> None:
        self._replies = [
            Reply(offset=1, seq=s, kind=ReplyKind.RESULT, value=f"result{s + 1}") for s in seqs
        ]
        self._cancel_requested = cancel_requested

    async def job(self, offset: int) -> SimpleNamespace:
        return SimpleNamespace(replies=self._replies, cancel_requested=self._cancel_requested)


async def test_resumes_after_the_last_reply_of_a_contiguous_run():
    resume = await progress(Recorded(0, 1), 1)  # type: ignore[arg-type]
    assert (resume.next_seq, resume.previous) == (2, "result2")


async def test_resumes_at_a_gap_left_by_a_lost_reply():
    # replies are pipelined: seq 1 was not confirmed, seq 2 was stored
    resume = await progress(Recorded(0, 2), 1)  # type: ignore[arg-type]
    assert (resume.next_seq, resume.previous) == (1, "result1")


async def test_starts_over_when_the_first_reply_is_missing():
    assert (await progress(Recorded(1, 2), 1)).next_seq == 0  # type: ignore[arg-type]


async def test_a_cancel_request_is_part_of_the_resume_point():
    resume = await progress(Recorded(0, cancel_requested=True), 1)  # type: ignore[arg-type]
    assert (resume.next_seq, resume.cancel_requested, resume.finished) == (1, True, False)
    assert not (await progress(Recorded(0), 1)).cancel_requested  # type: ignore[arg-type]
