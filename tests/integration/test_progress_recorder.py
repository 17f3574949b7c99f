"""Progress replies through the recorder, on the real broker and each ledger: the latest is
kept beside the job, never as a step; a hostile one is dead-lettered alone; a late one after
the job's end is dropped quietly and never shown."""

from collections.abc import AsyncIterator

import aio_pika
import orjson
import pytest

from contracts import JobRequest, Reply, ReplyKind
from contracts.errors import DeadLetterReason
from contracts.topology import LEDGER_QUEUE
from ledger import StoreOutcome
from messaging.declare import declare_topology
from tests.integration.test_reply_recorder import (
    Recording,
    left_in_queue,
    publish,
    run_until_settled,
)

REQUEST = JobRequest(deployment="Docker", framework="FastAPI", fn="default_fn")


@pytest.fixture
async def connection(amqp_url: str) -> AsyncIterator[aio_pika.abc.AbstractRobustConnection]:
    await declare_topology(amqp_url)
    async with await aio_pika.connect_robust(amqp_url) as opened:
        yield opened


def body(offset: int, seq: int, kind: ReplyKind, value: object) -> bytes:
    reply = Reply(offset=offset, seq=seq, kind=kind, value=value)  # type: ignore[arg-type]
    return reply.model_dump_json().encode()


def raw_progress(offset: int, value: object) -> bytes:
    """A signed progress message the contract refuses (built by hand, as an attacker would)."""
    text = orjson.dumps({"offset": offset, "seq": 0, "kind": "progress", "value": "VALUE"}).decode()
    return text.replace(
        '"VALUE"', value if isinstance(value, str) else orjson.dumps(value).decode()
    ).encode()


async def test_ticks_are_kept_not_stored_as_steps_and_late_or_hostile_ones_never_show(
    ledger, connection, amqp_url
):
    offset, _ = await ledger.create_job(REQUEST)
    await publish(
        connection,
        [
            (offset, body(offset, 0, ReplyKind.PROGRESS, {"current": 1, "total": 2})),
            (offset, body(offset, 0, ReplyKind.PROGRESS, {"current": 2, "total": 2})),
            (offset, body(offset, 0, ReplyKind.RESULT, "r0")),
            (offset, body(offset, 1, ReplyKind.DONE, "done")),
            (offset, body(offset, 0, ReplyKind.PROGRESS, {"current": 9, "message": "late"})),
            (offset, body(offset, 7, ReplyKind.PROGRESS, {"current": 9, "message": "after"})),
            (offset, raw_progress(offset, '{"current": NaN}')),
            (offset, raw_progress(offset, {"current": 1, "message": "x" * 10_000})),
            (offset, raw_progress(offset, [1, 2])),
            (offset, raw_progress(offset, {"current": "1", "total": 2})),
            (offset, raw_progress(offset, {"current": 1, "eta": 5})),
        ],
    )
    recording = Recording(ledger, amqp_url)

    await run_until_settled(recording, connection, expected=11)

    assert [r.value for r in await ledger.replies(offset)] == ["r0", "done"]
    record = await ledger.job(offset)
    assert record.state == "done"
    assert (record.progress.current, record.progress.total) == (2, 2)
    assert recording.outcomes[:6] == [
        StoreOutcome.STORED,
        StoreOutcome.STORED,
        StoreOutcome.STORED,
        StoreOutcome.STORED,
        StoreOutcome.STALE,  # a late tick of a step already done: dropped, not dead-lettered
        StoreOutcome.AFTER_FINAL,  # a step after the end: no worker sends it
    ]
    assert (
        recording.codes == [DeadLetterReason.REFUSED_REPLY] + [DeadLetterReason.INVALID_REPLY] * 5
    )
    assert await left_in_queue(amqp_url, LEDGER_QUEUE.name) == 0
