"""Bad input over AMQP gets an answer that says why, never silence: a submission on
jobcast.schedule (on both ledgers) and a worker's question on jobcast.progress."""

import asyncio
import uuid
from collections.abc import AsyncIterator

import aio_pika
import orjson
import pytest

from contracts.topology import DEAD_QUEUE, DIRECT_REPLY_TO, PROGRESS_QUEUE, SCHEDULE_QUEUE
from harness.processes import JobcastProcess
from tests.conftest import Spawner
from tests.support.waiting import eventually

GOOD = {"deployment": "Docker", "framework": "FastAPI", "fn": "default_fn"}


@pytest.fixture
def gateway(spawn: Spawner, jobcast_env: dict[str, str], database_url: str) -> JobcastProcess:
    """A real gateway on each ledger in turn (SQLite, PostgreSQL), ready."""
    process = spawn("gateway", {**jobcast_env, "JOBCAST_DATABASE_URL": database_url})
    process.wait_http("/ready")
    return process


@pytest.fixture
async def channel(gateway: JobcastProcess) -> AsyncIterator[aio_pika.abc.AbstractChannel]:
    connection = await aio_pika.connect(gateway.env["JOBCAST_AMQP_URL"])
    async with connection:
        yield await connection.channel()


async def _ask(
    channel: aio_pika.abc.AbstractChannel,
    queue: str,
    questions: dict[str, aio_pika.Message],
    timeout: float = 20.0,
) -> dict[str, dict[str, object]]:
    """Publish each question with reply_to (direct reply-to); their answers, by name."""
    answers: dict[str, dict[str, object]] = {}
    every = asyncio.Event()

    async def on_answer(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        answers[str(message.correlation_id)] = orjson.loads(message.body)
        if len(answers) == len(questions):
            every.set()

    replies = await channel.get_queue(DIRECT_REPLY_TO, ensure=False)
    tag = await replies.consume(on_answer, no_ack=True)
    for name, message in questions.items():
        message.reply_to = DIRECT_REPLY_TO
        message.correlation_id = name
        await channel.default_exchange.publish(message, routing_key=queue)
    try:
        await asyncio.wait_for(every.wait(), timeout)
    except TimeoutError:
        unanswered = sorted(set(questions) - set(answers))
        raise AssertionError(f"no answer within {timeout}s to {unanswered}") from None
    finally:
        await replies.cancel(tag)
    return answers


async def _dead_reasons(channel: aio_pika.abc.AbstractChannel, count: int) -> dict[str, str]:
    """x-jobcast-reason of the first `count` messages on jobcast.dead, by message_id."""
    dead = await channel.get_queue(DEAD_QUEUE.name, ensure=False)
    reasons: dict[str, str] = {}

    async def take() -> int:
        while (message := await dead.get(fail=False, no_ack=True)) is not None:
            reasons[str(message.message_id)] = str((message.headers or {}).get("x-jobcast-reason"))
        return len(reasons)

    await eventually(take, until=lambda n: n >= count, timeout=20, what="dead letters")
    return reasons


async def test_a_submission_no_ledger_can_store_is_refused_with_a_reason(gateway, channel):
    def submission(body: dict[str, str], message_id: str) -> aio_pika.Message:
        return aio_pika.Message(
            orjson.dumps(body), message_id=message_id, content_type="application/json"
        )

    bad = {
        "nul-in-a-name": submission({**GOOD, "deployment": "Doc\x00ker"}, "nul-in-a-name"),
        "control-in-a-name": submission({**GOOD, "fn": "default\x1bfn"}, "control-in-a-name"),
        "nul-in-message-id": submission(GOOD, "key\x00nul"),
        "long-message-id": submission(GOOD, "k" * 201),
    }
    answers = await _ask(channel, SCHEDULE_QUEUE.name, bad)
    for name, answer in answers.items():
        assert answer["error"] == "invalid_request", (name, answer)
    assert "U+0000" in str(answers["nul-in-a-name"]["detail"])
    assert "U+001B" in str(answers["control-in-a-name"]["detail"])
    assert "message_id" in str(answers["nul-in-message-id"]["detail"])
    assert "200" in str(answers["long-message-id"]["detail"])

    reasons = await _dead_reasons(channel, len(bad))
    assert sorted(reasons) == sorted(
        ["nul-in-a-name", "control-in-a-name", "key\x00nul", "k" * 201]
    )
    assert all(reason.startswith("invalid ") for reason in reasons.values()), reasons

    # the queue moved on: a good submission right after is scheduled, as the very first job
    good = {"good": submission(GOOD, f"good-{uuid.uuid4()}")}
    assert (await _ask(channel, SCHEDULE_QUEUE.name, good))["good"] == {"offset": 0}
    assert "Traceback" not in gateway.log()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_every_progress_question_gets_an_answer_and_no_traceback(gateway, channel):
    def question(body: bytes, content_type: str | None = "application/json") -> aio_pika.Message:
        return aio_pika.Message(body, content_type=content_type)

    questions = {
        "not-json": question(b"where is job 7?"),
        "not-json-untyped": question(b"\xff\xfe", content_type=None),
        "not-an-object": question(b"[7]"),
        "no-offset": question(b"{}"),
        "offset-a-string": question(b'{"offset": "seven"}'),
        "negative": question(b'{"offset": -1}'),
        "too-large-for-the-ledger": question(b'{"offset": 9223372036854775808}'),
        "huge-number": question(b'{"offset": ' + b"9" * 5000 + b"}"),
        "huge-body": question(b'{"offset": 1, "pad": "' + b"x" * 1_000_000 + b'"}'),
        "pending-cancels-not-a-bool": question(b'{"offset": 1, "pending_cancels": [1]}'),
        "valid": question(b'{"offset": 424242}'),
        "valid-with-pending-cancels": question(b'{"offset": 424242, "pending_cancels": true}'),
    }
    answers = await _ask(channel, PROGRESS_QUEUE.name, questions)
    nothing_recorded = {
        "offset": 424242,
        "next_seq": 0,
        "previous": None,
        "finished": False,
        "cancel_requested": False,
    }
    assert answers.pop("valid") == {**nothing_recorded, "pending_cancels": None}
    assert answers.pop("valid-with-pending-cancels") == {**nothing_recorded, "pending_cancels": []}
    for name, answer in answers.items():
        assert answer["error"] == "invalid_query", (name, answer)
        assert answer["detail"], (name, answer)
        assert len(orjson.dumps(answer)) < 1024, (name, answer)
    assert "Traceback" not in gateway.log()
