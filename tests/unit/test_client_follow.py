"""The client's join of history and live replies: no gap, no duplicate (no broker needed)."""

import asyncio

from client.follow import merge
from contracts import Reply, ReplyKind


def reply(seq: int, final: bool = False) -> Reply:
    kind = ReplyKind.DONE if final else ReplyKind.RESULT
    return Reply(offset=7, seq=seq, kind=kind, value=f"v{seq}")


class Ledger:
    """A fake query side whose recorded replies the test moves forward."""

    def __init__(self, *recorded: Reply) -> None:
        self.recorded = list(recorded)
        self.reads = 0

    async def history(self, after: int) -> list[Reply]:
        self.reads += 1
        return [r for r in self.recorded if r.seq > after]


async def collect(ledger: Ledger, live: "asyncio.Queue[Reply]", after: int = -1) -> list[int]:
    replies = merge(ledger.history, live, after, reread_seconds=0.2, gap_seconds=2)
    return [r.seq async for r in replies]


async def test_history_then_live_drops_what_both_have():
    ledger = Ledger(reply(0), reply(1))
    live: asyncio.Queue[Reply] = asyncio.Queue()
    for r in (reply(1), reply(2), reply(2), reply(3, final=True)):  # 1 also in history
        live.put_nowait(r)
    assert await collect(ledger, live) == [0, 1, 2, 3]


async def test_a_live_reply_that_overtakes_the_ledger_waits_for_the_ones_before_it():
    ledger = Ledger(reply(0))
    live: asyncio.Queue[Reply] = asyncio.Queue()
    live.put_nowait(reply(3, final=True))  # 1 and 2 were published before the subscription

    async def ledger_catches_up() -> None:
        await asyncio.sleep(0.3)
        ledger.recorded += [reply(1), reply(2), reply(3, final=True)]

    catching_up = asyncio.create_task(ledger_catches_up())
    assert await collect(ledger, live) == [0, 1, 2, 3]
    await catching_up


async def test_ended_in_history_never_waits_for_live():
    ledger = Ledger(reply(0), reply(1, final=True))
    live: asyncio.Queue[Reply] = asyncio.Queue()
    assert await asyncio.wait_for(collect(ledger, live), 1) == [0, 1]


async def test_a_final_reply_published_before_the_subscription_is_found_in_the_ledger():
    # the race that hung: the last replies went out before the temporary queue was bound,
    # and reached the ledger only after the history was first read; nothing more comes live
    ledger = Ledger(reply(0))
    live: asyncio.Queue[Reply] = asyncio.Queue()

    async def ledger_catches_up() -> None:
        await asyncio.sleep(0.3)
        ledger.recorded += [reply(1), reply(2, final=True)]

    catching_up = asyncio.create_task(ledger_catches_up())
    assert await asyncio.wait_for(collect(ledger, live), 5) == [0, 1, 2]
    await catching_up


async def test_a_gap_the_ledger_never_fills_is_skipped_after_a_while():
    ledger = Ledger(reply(0))
    live: asyncio.Queue[Reply] = asyncio.Queue()
    live.put_nowait(reply(2, final=True))
    assert await asyncio.wait_for(collect(ledger, live), 5) == [0, 2]


async def test_resume_after_a_seq():
    ledger = Ledger(reply(0), reply(1), reply(2))
    live: asyncio.Queue[Reply] = asyncio.Queue()
    live.put_nowait(reply(3, final=True))
    assert await collect(ledger, live, after=1) == [2, 3]


def test_the_client_depends_on_contracts_only():
    import subprocess
    import sys

    # no other jobcast package, and no broker library: the AMQP transport loads aio-pika itself
    probe = (
        "import sys, client; print(sorted({m.split('.')[0] for m in sys.modules}"
        " & {'consumer', 'producer', 'query', 'ledger', 'jobcast', 'messaging', 'observability',"
        " 'faststream', 'aio_pika', 'aiormq'}))"
    )
    found = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert found.stdout.strip() == "[]"


async def test_following_from_the_final_reply_ends_once_the_ledger_has_it():
    # the caller saw seq 3 (final) live, before the ledger recorded it: nothing more will come
    ledger = Ledger(reply(0), reply(1), reply(2))
    live: asyncio.Queue[Reply] = asyncio.Queue()

    async def record_final_later() -> None:
        await asyncio.sleep(0.3)
        ledger.recorded.append(reply(3, final=True))

    recorder = asyncio.create_task(record_final_later())
    assert await asyncio.wait_for(collect(ledger, live, after=3), timeout=5) == []
    await recorder
