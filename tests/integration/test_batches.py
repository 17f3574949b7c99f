"""Batches (POST /schedule/batch, jobcast.schedule.batch) and DELETE /jobs/{offset}, in process
on the real broker, gateway and worker in one app (as `jobcast serve` runs them)."""

import json
from collections.abc import AsyncIterator
from pathlib import Path
from unittest.mock import patch

import aio_pika
import httpx
import pytest

from contracts import BrokerUnavailableError, Job, ScheduleRejected
from contracts.batches import BatchAccepted, BatchRequest
from contracts.headers import HEADER_REASON
from contracts.topology import BATCH_QUEUE, DEAD_QUEUE
from jobcast.gateway import create_app
from jobcast.settings import Settings
from tests.support.waiting import eventually

JOB = {"deployment": "Docker", "framework": "FastAPI", "fn": "default_fn"}


@pytest.fixture
async def http(tmp_path: Path, amqp_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        amqp_url=amqp_url,
        database_url=f"sqlite:///{tmp_path / 'l.db'}",
        step_seconds=0,
        max_body_bytes=2048,
        max_batch_body_bytes=64 * 1024,
    )
    app = create_app(settings, with_worker=True)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://jobcast") as client:
            client.app = app  # type: ignore[attr-defined]
            client.amqp_url = amqp_url  # type: ignore[attr-defined]
            yield client


async def finished(http: httpx.AsyncClient, offset: int) -> dict[str, object]:
    answer = await eventually(
        lambda: http.get(f"/jobs/{offset}"),
        until=lambda r: r.json()["state"] in ("done", "failed"),
        what=f"job {offset} finished",
    )
    job: dict[str, object] = answer.json()
    return job


async def next_offset(http: httpx.AsyncClient) -> int:
    offset: int = (await http.post("/schedule", json=JOB)).json()["offset"]
    return offset


async def test_a_batch_gets_its_offsets_in_order_and_every_job_runs_tagged(http):
    jobs = [{**JOB, "deployment": f"d{i}"} for i in range(5)]
    answer = await http.post("/schedule/batch", json={"jobs": jobs, "batch": "nightly"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body == {"offsets": [0, 1, 2, 3, 4], "tag": "batch:nightly"}
    for offset, job in zip(body["offsets"], jobs, strict=True):
        record = await finished(http, offset)
        assert record["state"] == "done"
        assert record["request"] == {**job, "tags": ["batch:nightly"]}
    tagged = (await http.get("/jobs", params={"tag": "batch:nightly"})).json()
    assert sorted(job["offset"] for job in tagged["jobs"]) == [0, 1, 2, 3, 4]


async def test_a_repeated_batch_answers_the_same_offsets_and_schedules_nothing(http):
    batch = {"jobs": [{**JOB, "idempotency_key": f"k{i}"} for i in range(3)]}
    first = (await http.post("/schedule/batch", json=batch)).json()
    again = (await http.post("/schedule/batch", json=batch)).json()
    assert first == again == {"offsets": [0, 1, 2], "tag": None}
    assert await next_offset(http) == 3


async def test_a_key_reused_for_another_request_is_409_and_nothing_is_scheduled(http):
    await http.post("/schedule", json=JOB, headers={"Idempotency-Key": "taken"})
    other = {**JOB, "fn": "another"}
    refused = await http.post(
        "/schedule/batch",
        json={"jobs": [{**JOB, "idempotency_key": "new"}, {**other, "idempotency_key": "taken"}]},
    )
    assert refused.status_code == 409
    assert "taken" in refused.json()["detail"]
    assert await next_offset(http) == 1  # the batch took no offset


async def test_a_batch_is_bounded_by_count_and_size_not_by_the_single_job_limit(http):
    big = {"jobs": [{**JOB, "deployment": "d" * 150} for _ in range(40)]}  # ~10 KB
    assert (await http.post("/schedule", json={**JOB, "deployment": "d" * 3000})).status_code == 413
    assert (await http.post("/schedule/batch", json=big)).status_code == 200
    too_big = {"jobs": [{**JOB, "deployment": "d" * 150} for _ in range(400)]}  # ~100 KB
    assert (await http.post("/schedule/batch", json=too_big)).status_code == 413
    small = {"deployment": "d", "framework": "f", "fn": "f"}
    assert (await http.post("/schedule/batch", json={"jobs": [small] * 1000})).status_code == 200
    too_many = await http.post("/schedule/batch", json={"jobs": [small] * 1001})
    assert too_many.status_code == 422
    assert "at most 1000" in str(too_many.json()["detail"])
    assert (await http.post("/schedule/batch", json={"jobs": []})).status_code == 422
    assert (
        await http.post("/schedule/batch", json={"jobs": [{**JOB, "fn": ""}]})
    ).status_code == 422


async def test_a_batch_rabbitmq_does_not_wholly_confirm_hands_out_no_offset(http):
    """The second job's publish is not confirmed: 503, and none of the batch's offsets exists
    (the first job, which RabbitMQ did take, runs, but its replies are refused)."""
    publish = http.app.state.batches._publish_job

    async def second_fails(job: Job) -> None:
        if job.offset == 1:
            raise BrokerUnavailableError("not confirmed")
        await publish(job)

    with patch.object(http.app.state.batches, "_publish_job", side_effect=second_fails):
        refused = await http.post("/schedule/batch", json={"jobs": [JOB] * 3})
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1"
    assert "no offset was handed out" in refused.json()["detail"]
    for offset in (0, 1, 2):
        assert (await http.get(f"/jobs/{offset}")).status_code == 404
    assert await next_offset(http) == 3


async def test_delete_removes_a_finished_job_and_its_offset_answers_410(http):
    offset = await next_offset(http)
    await finished(http, offset)
    deleted = await http.delete(f"/jobs/{offset}")
    assert deleted.status_code == 204
    for path in (f"/jobs/{offset}", f"/messages/{offset}", f"/messages/{offset}/stream"):
        gone = await http.get(path)
        assert (gone.status_code, gone.json()) == (410, {"detail": "Offset expired"}), path
    assert (await http.delete(f"/jobs/{offset}")).status_code == 410
    never = await http.delete(f"/jobs/{offset + 100}")
    assert (never.status_code, never.json()) == (404, {"detail": "Offset not found"})


async def test_delete_of_a_job_that_has_not_finished_is_409_and_keeps_it(http):
    later = await http.post("/schedule", json={**JOB, "delay_seconds": 600})
    offset = later.json()["offset"]
    refused = await http.delete(f"/jobs/{offset}")
    assert refused.status_code == 409
    assert (await http.get(f"/jobs/{offset}")).json()["state"] == "scheduled"


async def ask(amqp_url: str, body: bytes) -> bytes:
    """Publish `body` on jobcast.schedule.batch with reply_to and return the answer's body."""
    async with await aio_pika.connect(amqp_url) as connection:
        channel = await connection.channel()
        answers = await channel.declare_queue(exclusive=True)
        await channel.default_exchange.publish(
            aio_pika.Message(body, reply_to=answers.name, correlation_id="c1"),
            routing_key=BATCH_QUEUE.name,
        )
        async with answers.iterator(timeout=30) as messages:
            async for message in messages:
                await message.ack()
                return message.body
    raise AssertionError("no answer")


async def dead_reasons(amqp_url: str) -> list[str]:
    async with await aio_pika.connect(amqp_url) as connection:
        queue = await (await connection.channel()).get_queue(DEAD_QUEUE.name, ensure=False)
        found = []
        while (message := await queue.get(fail=False, no_ack=True)) is not None:
            found.append(str(message.headers[HEADER_REASON]))
        return found


async def test_a_batch_over_amqp_is_answered_with_its_offsets_in_order(http):
    batch = BatchRequest.model_validate(
        {"jobs": [{**JOB, "idempotency_key": f"a{i}"} for i in range(3)], "batch": "amqp"}
    )
    answer = BatchAccepted.model_validate_json(
        await ask(http.amqp_url, batch.model_dump_json().encode())
    )
    assert answer == BatchAccepted(offsets=[0, 1, 2], tag="batch:amqp")
    again = BatchAccepted.model_validate_json(
        await ask(http.amqp_url, batch.model_dump_json().encode())
    )
    assert again == answer
    for offset in answer.offsets:
        assert (await finished(http, offset))["state"] == "done"


async def test_a_batch_over_amqp_that_cannot_be_scheduled_is_refused_and_dead_lettered(http):
    await http.post("/schedule", json=JOB, headers={"Idempotency-Key": "taken"})
    conflict = {"jobs": [{**JOB, "fn": "other", "idempotency_key": "taken"}]}
    for body in (b"not json", b'{"jobs": []}', json.dumps(conflict).encode()):
        refused = ScheduleRejected.model_validate_json(await ask(http.amqp_url, body))
        assert refused.error in ("invalid_request", "idempotency_conflict")
    reasons: list[str] = []

    async def collected() -> list[str]:
        reasons.extend(await dead_reasons(http.amqp_url))
        return reasons

    await eventually(collected, until=lambda found: len(found) == 3, what="three dead letters")
    assert any("taken" in reason for reason in reasons)
    assert await next_offset(http) == 1  # none of them took an offset
