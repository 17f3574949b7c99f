"""Where a redelivered job resumes, from the replies the ledger holds."""

from contracts import Reply, ReplyKind
from query.progress import progress


class Recorded:
    def __init__(self, *seqs: int) -> None:
        self._replies = [
            Reply(offset=1, seq=s, kind=ReplyKind.RESULT, value=f"result{s + 1}") for s in seqs
        ]

    async def replies(self, offset: int, after_seq: int = -1) -> list[Reply]:
        return self._replies


async def test_resumes_after_the_last_reply_of_a_contiguous_run():
    resume = await progress(Recorded(0, 1), 1)  # type: ignore[arg-type]
    assert (resume.next_seq, resume.previous) == (2, "result2")


async def test_resumes_at_a_gap_left_by_a_lost_reply():
    # replies are pipelined: seq 1 was not confirmed, seq 2 was stored
    resume = await progress(Recorded(0, 2), 1)  # type: ignore[arg-type]
    assert (resume.next_seq, resume.previous) == (1, "result1")


async def test_starts_over_when_the_first_reply_is_missing():
    assert (await progress(Recorded(1, 2), 1)).next_seq == 0  # type: ignore[arg-type]
