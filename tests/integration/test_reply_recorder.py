"""The reply recorder on the real broker and each real ledger (SQLite, PostgreSQL): every
reply stored once, acked only after its commit, batched under load, and nothing that cannot
be stored stalls the queue."""

from collections.abc import AsyncIterator, Sequence

import aio_pika
import pytest

from contracts import JobRequest, LedgerUnavailableError, Reply, ReplyKind
from contracts.errors import DeadLetterReason, LedgerRejectedError
from contracts.headers import HEADER_REASON, HEADER_SIGNATURE
from contracts.signing import Signer
from contracts.topology import DEAD_QUEUE, LEDGER_QUEUE, REPLIES_EXCHANGE, reply_key
from ledger import Ledger, StoreOutcome
from messaging.declare import declare_topology
from query.recorder import Recorded, ReplyRecorder
from query.wakeups import ReplyHub
from tests.support.waiting import eventually

REQUEST = JobRequest(deployment="Docker", framework="FastAPI", fn="default_fn")
WORKERS = Signer("the key workers and gateways share")


@pytest.fixture
async def connection(amqp_url: str) -> AsyncIterator[aio_pika.abc.AbstractRobustConnection]:
    await declare_topology(amqp_url)
    async with await aio_pika.connect_robust(amqp_url) as opened:
        yield opened


class Recording:
    """A ReplyRecorder with what it did: batches stored, outcomes, dead letters."""

    def __init__(
        self, ledger: Ledger, amqp_url: str, *, down_for: int = 0, stall_seconds: float = 30
    ) -> None:
        self.ledger = ledger
        self.amqp_url = amqp_url
        self.batches: list[int] = []
        self.outcomes: list[StoreOutcome | None] = []
        self.down_for = down_for
        self.recorder = ReplyRecorder(
            self.store_many,
            ReplyHub(),
            self.dead_letter,
            WORKERS,
            prefetch=64,
            observe=self.observe,
            stall_seconds=stall_seconds,
        )
        self.dead: list[tuple[bytes, str]] = []
        self.codes: list[DeadLetterReason] = []

    async def store_many(self, replies: Sequence[Reply]) -> list[StoreOutcome]:
        if self.down_for:
            self.down_for -= 1
            raise LedgerUnavailableError("the ledger is down (test)")
        self.batches.append(len(replies))
        return await self.ledger.store_replies(replies)

    async def dead_letter(
        self, message: aio_pika.abc.AbstractIncomingMessage, reason: DeadLetterReason, why: str
    ) -> bool:
        async with await aio_pika.connect(self.amqp_url) as conn:
            channel = await conn.channel(publisher_confirms=True)
            copy = aio_pika.Message(message.body, headers={HEADER_REASON: why})
            await channel.default_exchange.publish(copy, routing_key=DEAD_QUEUE.name)
        self.dead.append((message.body, why))
        self.codes.append(reason)
        return True

    def observe(self, batch: Sequence[Recorded]) -> None:
        self.outcomes.extend(item.outcome for item in batch)


async def publish(
    connection: aio_pika.abc.AbstractConnection,
    bodies: list[tuple[int, bytes]],
    *,
    signer: Signer | None = WORKERS,
) -> None:
    """Publish reply bodies as a worker does (signed), or unsigned with `signer=None`."""
    channel = await connection.channel(publisher_confirms=True)
    exchange = await channel.get_exchange(REPLIES_EXCHANGE.name)
    for offset, body in bodies:
        headers = {} if signer is None else {HEADER_SIGNATURE: signer.sign(body)}
        message = aio_pika.Message(
            body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT, headers=headers
        )
        await exchange.publish(message, routing_key=reply_key(offset))
    await channel.close()


def replies_of(offset: int) -> list[tuple[int, bytes]]:
    kinds = [ReplyKind.RESULT] * 3 + [ReplyKind.DONE]
    return [
        (
            offset,
            Reply(offset=offset, seq=seq, kind=kind, value=f"v{seq}").model_dump_json().encode(),
        )
        for seq, kind in enumerate(kinds)
    ]


async def left_in_queue(amqp_url: str, name: str) -> int:
    async with await aio_pika.connect(amqp_url) as conn:
        queue = await (await conn.channel()).declare_queue(name, passive=True)
        return int(queue.declaration_result.message_count or 0)


async def run_until_settled(recording: Recording, connection, expected: int) -> None:
    """Record until `expected` messages are settled, then stop: whatever was not acked goes
    back to the queue when the consumer's channel closes."""
    await recording.recorder.start(connection)
    await eventually(
        lambda: _settled(recording), until=lambda n: n >= expected, what="messages settled"
    )
    await recording.recorder.stop(timeout=5)


async def _settled(recording: Recording) -> int:
    return len(recording.outcomes)


async def test_every_reply_is_stored_once_and_acked_in_batches(ledger, connection, amqp_url):
    offsets = [(await ledger.create_job(REQUEST))[0] for _ in range(100)]
    bodies = [body for offset in offsets for body in replies_of(offset)]
    await publish(connection, bodies + bodies)  # every reply twice: as a redelivery would be
    recording = Recording(ledger, amqp_url)

    await run_until_settled(recording, connection, expected=800)

    assert recording.outcomes.count(StoreOutcome.STORED) == 400
    assert recording.outcomes.count(StoreOutcome.DUPLICATE) == 400
    for offset in offsets:
        assert [r.value for r in await ledger.replies(offset)] == ["v0", "v1", "v2", "v3"]
    assert len(recording.batches) < 800 / 4  # many replies per transaction, under load
    assert await left_in_queue(amqp_url, LEDGER_QUEUE.name) == 0  # every one was acked
    assert recording.dead == []


async def test_what_cannot_be_stored_is_dead_lettered_and_the_rest_moves_on(
    ledger, connection, amqp_url
):
    (offset, _) = await ledger.create_job(REQUEST)
    good = replies_of(offset)
    poison = [(offset, b"{not json"), (999, replies_of(999)[0][1])]
    await publish(connection, [good[0], poison[0], good[1], poison[1], good[2], good[3]])
    recording = Recording(ledger, amqp_url)

    await run_until_settled(recording, connection, expected=6)

    assert [r.value for r in await ledger.replies(offset)] == ["v0", "v1", "v2", "v3"]
    reasons = [why for _, why in recording.dead]
    assert reasons[0].startswith("invalid reply")
    assert reasons[1] == "reply for offset 999, never handed out (seq 0)"
    assert recording.codes == [DeadLetterReason.INVALID_REPLY, DeadLetterReason.UNKNOWN_OFFSET]
    assert await left_in_queue(amqp_url, LEDGER_QUEUE.name) == 0
    assert await left_in_queue(amqp_url, DEAD_QUEUE.name) == 2


async def test_while_the_ledger_is_down_replies_wait_and_are_stored_after(
    ledger, connection, amqp_url
):
    (offset, _) = await ledger.create_job(REQUEST)
    await publish(connection, replies_of(offset))
    recording = Recording(ledger, amqp_url, down_for=3)

    await run_until_settled(recording, connection, expected=4)

    assert [r.value for r in await ledger.replies(offset)] == ["v0", "v1", "v2", "v3"]
    assert recording.dead == []
    assert await left_in_queue(amqp_url, LEDGER_QUEUE.name) == 0


async def test_replies_not_yet_committed_are_not_acked(ledger, connection, amqp_url):
    (offset, _) = await ledger.create_job(REQUEST)
    await publish(connection, replies_of(offset))
    stuck = Recording(ledger, amqp_url, down_for=10**6)  # the ledger never answers
    await stuck.recorder.start(connection)
    await eventually(
        lambda: left_in_queue(amqp_url, LEDGER_QUEUE.name),
        until=lambda n: n == 0,
        what="the recorder took all four",
    )

    await stuck.recorder.stop(timeout=0.2)  # gives up: nothing was committed

    assert await ledger.replies(offset) == []
    assert await left_in_queue(amqp_url, LEDGER_QUEUE.name) == 4  # all back in the queue
    fresh = Recording(ledger, amqp_url)
    await run_until_settled(fresh, connection, expected=4)
    assert [r.value for r in await ledger.replies(offset)] == ["v0", "v1", "v2", "v3"]


def reply_body(offset: int, seq: int, kind: ReplyKind = ReplyKind.RESULT, value="v") -> bytes:
    return Reply(offset=offset, seq=seq, kind=kind, value=value).model_dump_json().encode()


async def test_replies_no_worker_signed_are_dead_lettered_never_stored(
    ledger, connection, amqp_url
):
    (offset, _) = await ledger.create_job(REQUEST)
    forged = reply_body(offset, 0, ReplyKind.DONE, "forged")
    await publish(connection, [(offset, forged)], signer=None)
    await publish(connection, [(offset, forged)], signer=Signer("a key the forger guessed"))
    await publish(connection, replies_of(offset))
    recording = Recording(ledger, amqp_url)

    await run_until_settled(recording, connection, expected=6)

    assert [r.value for r in await ledger.replies(offset)] == ["v0", "v1", "v2", "v3"]
    reasons = [why for _, why in recording.dead]
    assert reasons == [
        "unsigned reply: no x-jobcast-signature (only workers write results)",
        "unsigned reply: a wrong x-jobcast-signature (only workers write results)",
    ]


async def test_replies_that_cannot_be_true_of_their_job_are_refused(ledger, connection, amqp_url):
    (offset, _) = await ledger.create_job(REQUEST)
    (other, _) = await ledger.create_job(REQUEST)
    await publish(connection, replies_of(offset))
    await publish(
        connection,
        [
            (offset, reply_body(offset, 4, value="after done")),
            (offset, reply_body(offset, 1, ReplyKind.ERROR, "second final")),
            (offset, reply_body(offset, 9, value="x" * 5_000_000)),
            (other, reply_body(offset, 0, value="into another job")),  # key says `other`
            (other, reply_body(other, 5000, value="far ahead")),
            (other, reply_body(other, 0, value="mine")),
        ],
    )
    recording = Recording(ledger, amqp_url)

    await run_until_settled(recording, connection, expected=10)

    assert [r.value for r in await ledger.replies(offset)] == ["v0", "v1", "v2", "v3"]
    assert [r.value for r in await ledger.replies(other)] == ["mine"]
    reasons = [why for _, why in recording.dead]
    assert (
        reasons[0] == f"refused reply: seq 4 of offset {offset} comes after the job's final reply"
    )
    assert reasons[1].startswith(f"refused reply: seq 1 of offset {offset} is a second final")
    assert reasons[2].startswith("too large: a reply of ")
    assert reasons[3] == f"misrouted reply: routing key 'reply.{other}' for offset {offset}"
    assert reasons[4].startswith(f"refused reply: seq 5000 of offset {other} is more than")
    assert recording.codes == [
        DeadLetterReason.REFUSED_REPLY,
        DeadLetterReason.REFUSED_REPLY,
        DeadLetterReason.TOO_LARGE,
        DeadLetterReason.MISROUTED,
        DeadLetterReason.REFUSED_REPLY,
    ]
    assert await left_in_queue(amqp_url, LEDGER_QUEUE.name) == 0


async def test_a_number_too_large_for_the_ledger_fails_alone_and_recording_goes_on(
    ledger, connection, amqp_url
):
    (offset, _) = await ledger.create_job(REQUEST)
    huge = b'{"offset": %d, "seq": 0, "kind": "result", "value": "v"}' % 2**63
    overflowing_seq = b'{"offset": %d, "seq": %d, "kind": "result", "value": "v"}' % (
        offset,
        2**31,
    )
    await publish(connection, [(2**63, huge), (offset, overflowing_seq)])
    await publish(connection, replies_of(offset))
    recording = Recording(ledger, amqp_url)

    await run_until_settled(recording, connection, expected=6)

    assert [r.value for r in await ledger.replies(offset)] == ["v0", "v1", "v2", "v3"]
    reasons = [why for _, why in recording.dead]
    assert reasons[0].startswith("invalid reply: offset: Input should be less than or equal to")
    assert reasons[1].startswith("invalid reply: seq: Input should be less than or equal to")


async def test_a_reply_the_database_refuses_fails_alone_not_its_batch(ledger, connection, amqp_url):
    (offset, _) = await ledger.create_job(REQUEST)

    class Refusing(Recording):
        async def store_many(self, replies):
            if any(r.value == "v1" for r in replies):
                raise LedgerRejectedError("the database refused v1 (test)")
            return await super().store_many(replies)

    recording = Refusing(ledger, amqp_url)
    await publish(connection, replies_of(offset))

    await run_until_settled(recording, connection, expected=4)

    assert [why for _, why in recording.dead] == [
        f"ledger refused: seq 1 of offset {offset}: the database refused v1 (test)"
    ]
    assert [r.value for r in await ledger.replies(offset)] == ["v0"]  # the rest wait for seq 1
    assert (await ledger.job(offset)).state.value == "running"
    assert await left_in_queue(amqp_url, LEDGER_QUEUE.name) == 0


async def test_a_recorder_that_cannot_make_progress_says_it_is_stalled(
    ledger, connection, amqp_url
):
    (offset, _) = await ledger.create_job(REQUEST)
    await publish(connection, replies_of(offset))
    stuck = Recording(ledger, amqp_url, down_for=10**6, stall_seconds=0.3)
    assert not stuck.recorder.stalled
    await stuck.recorder.start(connection)

    await eventually(lambda: _stalled(stuck), until=bool, what="the recorder says it is stalled")
    await stuck.recorder.stop(timeout=0.2)
    assert not stuck.recorder.stalled


async def _stalled(recording: Recording) -> bool:
    return recording.recorder.stalled


async def test_a_signature_header_that_is_not_ascii_fails_alone_not_its_batch(
    ledger, connection, amqp_url
):
    # Found by review: hmac.compare_digest raised TypeError on a non-ASCII str, the whole batch
    # went back to the queue, came back with the same message, and so on to the delivery limit.
    (offset, _) = await ledger.create_job(REQUEST)
    good = replies_of(offset)
    channel = await connection.channel(publisher_confirms=True)
    exchange = await channel.get_exchange(REPLIES_EXCHANGE.name)
    forged = reply_body(offset, 0, ReplyKind.DONE, "forged")
    for signature in ("\u00e9" * 64, bytearray(b"\xff" * 64)):
        await exchange.publish(
            aio_pika.Message(forged, headers={HEADER_SIGNATURE: signature}),
            routing_key=reply_key(offset),
        )
    await channel.close()
    await publish(connection, good)
    recording = Recording(ledger, amqp_url)

    await run_until_settled(recording, connection, expected=6)

    assert [r.value for r in await ledger.replies(offset)] == ["v0", "v1", "v2", "v3"]
    assert [why for _, why in recording.dead] == [
        "unsigned reply: a wrong x-jobcast-signature (only workers write results)"
    ] * 2
    assert await left_in_queue(amqp_url, LEDGER_QUEUE.name) == 0
