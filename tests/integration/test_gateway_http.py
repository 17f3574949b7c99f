"""The HTTP contract, in process (ASGI transport) on the real broker: gateway and worker in
one app, as `jobcast serve` runs them."""

from collections.abc import AsyncIterator
from pathlib import Path
from unittest.mock import patch

import aio_pika
import httpx
import pytest

from contracts import BrokerUnavailableError
from contracts.headers import HEADER_REASON
from contracts.topology import DEAD_QUEUE
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
        max_body_bytes=1024,
    )
    app = create_app(settings, with_worker=True)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://jobcast") as client:
            client.app = app  # type: ignore[attr-defined]
            client.amqp_url = amqp_url  # type: ignore[attr-defined]
            yield client


async def finished(http: httpx.AsyncClient, offset: int) -> dict[str, object]:
    """The job once it reached done or failed."""
    answer = await eventually(
        lambda: http.get(f"/jobs/{offset}"),
        until=lambda r: r.json()["state"] in ("done", "failed"),
        what=f"job {offset} finished",
    )
    job: dict[str, object] = answer.json()
    return job


async def dead_letter_headers(amqp_url: str) -> list[dict[str, object]]:
    """The headers of every message in jobcast.dead."""
    async with await aio_pika.connect(amqp_url) as connection:
        queue = await (await connection.channel()).get_queue(DEAD_QUEUE.name, ensure=False)
        found = []
        while (message := await queue.get(fail=False, no_ack=True)) is not None:
            found.append(dict(message.headers))
        return found


async def test_schedule_answers_with_consecutive_offsets(http):
    offsets = [(await http.post("/schedule", json=JOB)).json() for _ in range(3)]
    assert offsets == [{"offset": 0}, {"offset": 1}, {"offset": 2}]


async def test_results_of_the_default_pipeline(http):
    offset = (await http.post("/schedule", json=JOB)).json()["offset"]
    job = await finished(http, offset)
    assert job["state"] == "done"
    body = (await http.get(f"/messages/{offset}")).json()
    assert body == ["result1", "result2", "result3", "done"]
    assert job["request"] == JOB
    assert [r["seq"] for r in job["replies"]] == [0, 1, 2, 3]


async def test_an_unknown_offset_is_404_like_the_original_example(http):
    response = await http.get("/messages/999")
    assert (response.status_code, response.json()) == (404, {"detail": "Offset not found"})
    assert (await http.get("/jobs/999")).status_code == 404


@pytest.mark.parametrize("offset", ["-1", "abc", "1.5"])
async def test_offsets_that_are_not_non_negative_integers_are_422(http, offset):
    assert (await http.get(f"/messages/{offset}")).status_code == 422


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b'{"deployment": "Docker", "framework": "FastAPI"}',
        b'{"deployment": "Docker", "framework": "FastAPI", "fn": 3}',
        b'{"deployment": "Docker", "framework": "FastAPI", "fn": "f", "x": 1}',
        b'{"deployment": "", "framework": "FastAPI", "fn": "f"}',
        b"[]",
    ],
)
async def test_bad_bodies_are_422_with_the_problem_named(http, body):
    response = await http.post(
        "/schedule", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["msg"]


async def test_a_body_over_the_limit_is_413_before_it_is_parsed(http):
    huge = b'{"deployment": "' + b"x" * 2000 + b'", "framework": "F", "fn": "f"}'
    response = await http.post(
        "/schedule", content=huge, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert "larger than 1024 bytes" in response.json()["detail"]


async def test_a_broker_that_does_not_confirm_gives_503_and_no_offset(http):
    scheduler = http.app.state.scheduler
    with patch.object(scheduler, "_publish_job", side_effect=BrokerUnavailableError("down")):
        refused = await http.post("/schedule", json=JOB)
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1"
    # the offset it would have had is not served, and the next job gets a fresh one
    assert (await http.get("/messages/0")).status_code == 404
    assert (await http.post("/schedule", json=JOB)).json() == {"offset": 1}


async def test_the_same_idempotency_key_schedules_once(http):
    first = await http.post("/schedule", json=JOB, headers={"Idempotency-Key": "abc"})
    again = await http.post("/schedule", json=JOB, headers={"Idempotency-Key": "abc"})
    assert first.json() == again.json() == {"offset": 0}
    other = await http.post(
        "/schedule", json={**JOB, "fn": "x"}, headers={"Idempotency-Key": "abc"}
    )
    assert other.status_code == 409


async def test_an_unknown_fn_fails_the_job_with_a_reason(http):
    offset = (await http.post("/schedule", json={**JOB, "fn": "nope"})).json()["offset"]
    job = await finished(http, offset)
    assert job["state"] == "failed"
    assert "'nope'" in job["error"]
    assert "default_fn" in job["error"]
    assert (await http.get(f"/messages/{offset}")).json()[-1] == job["error"]
    (headers,) = await eventually(
        lambda: dead_letter_headers(http.amqp_url), what="the job in jobcast.dead"
    )
    assert "'nope'" in headers[HEADER_REASON]


async def test_health(http):
    assert (await http.get("/health")).json() == {"status": "ok"}
