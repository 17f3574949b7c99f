"""The bench counts jobcast's finished jobs the way GET /messages would see them, however the
jobs finish: out of order, failed, or scheduled between two counts."""

from pathlib import Path

from bench.systems import Jobcast
from contracts import JobRequest, Reply, ReplyKind
from ledger import open_ledger

REQUEST = JobRequest(deployment="Docker", framework="FastAPI", fn="default_fn")


def final(offset: int, kind: ReplyKind = ReplyKind.DONE) -> Reply:
    return Reply(offset=offset, seq=0, kind=kind, value="done" if kind is ReplyKind.DONE else "x")


async def test_done_count_follows_jobs_finishing_in_any_order(tmp_path: Path, amqp_base_url):
    system = Jobcast(tmp_path)
    ledger = open_ledger(f"sqlite:///{system.ledger_path}")
    await ledger.open()
    try:
        offsets = [(await ledger.create_job(REQUEST))[0] for _ in range(6)]
        assert system.done_count() == 0

        await ledger.store_replies([final(offsets[3]), final(offsets[1])])  # out of order
        assert system.done_count() == 2
        await ledger.store_replies([final(offsets[0]), final(offsets[2], ReplyKind.ERROR)])
        assert system.done_count() == 3  # a failed job is settled, not done
        more = [(await ledger.create_job(REQUEST))[0] for _ in range(2)]  # between two counts
        await ledger.store_replies([final(o) for o in (offsets[4], offsets[5], *more)])
        assert system.done_count() == 7
        assert system.done_count() == 7  # counting again counts nothing twice
    finally:
        await ledger.close()
        system.stop()
