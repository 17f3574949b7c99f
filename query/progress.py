"""Where a redelivered job resumes: the first gap in its recorded replies."""

from contracts import Progress
from ledger import Ledger


async def progress(ledger: Ledger, offset: int) -> Progress:
    """How far a job got: where a redelivered job resumes, and whether it was cancelled."""
    job = await ledger.job(offset)
    recorded = job.replies
    # NOTE: a worker publishes a job's replies in seq order but does not wait for each confirm
    # before the next, so if one was lost and a later one stored, the ledger has a gap; the
    # job resumes at the gap (the later reply, sent again, is kept once).
    last = None
    for expected, reply in enumerate(recorded):
        if reply.seq != expected:
            break
        last = reply
    if last is None:
        return Progress(offset=offset, next_seq=0, cancel_requested=job.cancel_requested)
    return Progress(
        offset=offset,
        next_seq=last.seq + 1,
        previous=last.value,
        finished=last.is_final,
        cancel_requested=job.cancel_requested,
    )
