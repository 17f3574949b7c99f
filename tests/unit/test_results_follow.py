"""A follower never ends before the end it has not been shown: Results.follow reads the job's
replies, then, finding none after its seq, whether the job ended; another gateway may store
the job's last replies and end it between the two reads."""

import asyncio
from types import SimpleNamespace

from contracts import JobState, Reply, ReplyKind
from query.results import Results
from query.wakeups import ReplyHub

OFFSET = 3
DONE = Reply(offset=OFFSET, seq=2, kind=ReplyKind.DONE, value="done")


class LedgerEndingBetweenReads:
    """Seq 0 and 1 stored; the done (seq 2), which ends the job, is committed by another
    gateway right after the follower's second read of replies, before it reads the job."""

    def __init__(self) -> None:
        self.stored = [
            Reply(offset=OFFSET, seq=0, kind=ReplyKind.RESULT, value="r0"),
            Reply(offset=OFFSET, seq=1, kind=ReplyKind.RESULT, value="r1"),
        ]
        self.reads = 0

    async def replies(self, offset: int, after_seq: int = -1, *, with_progress: bool = False):
        self.reads += 1
        found = [reply for reply in self.stored if reply.seq > after_seq]
        if self.reads == 2:
            self.stored.append(DONE)  # committed just after this read saw nothing new
        return found

    async def job(self, offset: int) -> SimpleNamespace:
        ended = any(reply.is_final for reply in self.stored)
        return SimpleNamespace(state=JobState.DONE if ended else JobState.RUNNING)


async def test_a_follower_woken_as_the_job_ends_between_its_reads_still_gets_the_end():
    hub = ReplyHub()
    results = Results(LedgerEndingBetweenReads(), hub)  # type: ignore[arg-type]
    following = results.follow(OFFSET)
    seen = [await anext(following), await anext(following)]  # the history: seq 0 and 1
    rest = asyncio.ensure_future(anext(following))
    await asyncio.sleep(0)  # the follower is waiting for a wake-up
    hub.notify(OFFSET)  # rung by a store it then does not see in its read
    seen.append(await asyncio.wait_for(rest, 5))
    assert [reply.seq for reply in seen] == [0, 1, 2]
    assert seen[-1].kind is ReplyKind.DONE
