"""GET /jobs, GET /stats and tags on POST /schedule and jobcast.schedule, in process on the real
broker: a gateway with no worker, so what waits in jobcast.jobs is what the test put there."""

import base64
from collections.abc import AsyncIterator

import aio_pika
import httpx
import orjson
import pytest

from contracts import Reply
from contracts.topology import DEAD_QUEUE, JOBS_QUEUE, SCHEDULE_QUEUE
from jobcast.gateway import create_app
from jobcast.settings import Settings

JOB = {"deployment": "Docker", "framework": "FastAPI", "fn": "default_fn"}


async def gateway(database_url: str, amqp_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(amqp_url=amqp_url, database_url=database_url))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://jobcast") as client:
            client.ledger = app.state.ledger  # type: ignore[attr-defined]
            yield client


@pytest.fixture
async def http(database_url: str, amqp_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A gateway without a worker, on each ledger in turn."""
    async for client in gateway(database_url, amqp_url):
        yield client


@pytest.fixture
async def edge(sqlite_url: str, amqp_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A gateway without a worker on SQLite: for answers decided before the ledger is read."""
    async for client in gateway(sqlite_url, amqp_url):
        yield client


async def hold(message: object) -> None:
    """A consumer that never acks: its job stays taken."""


async def schedule(http: httpx.AsyncClient, **extra: object) -> int:
    answer = await http.post("/schedule", json={**JOB, **extra})
    assert answer.status_code == 200, answer.text
    return int(answer.json()["offset"])


async def finish(http: httpx.AsyncClient, offset: int, steps: int, end: str = "done") -> None:
    """Record a whole job's replies, as a worker's would be."""
    replies = [Reply(offset=offset, seq=s, kind="result", value=s) for s in range(steps)]
    replies.append(Reply(offset=offset, seq=steps, kind=end, value=end))
    await http.ledger.store_replies(replies)  # type: ignore[attr-defined]


BAD_TAGS = [["a"] * 9, [""], ["x" * 65], ["has space"], ["<script>"], ["é"], "eu", [1], None]


async def test_tags_outside_the_contract_are_422_and_nothing_is_scheduled(edge):
    for tags in BAD_TAGS:
        answer = await edge.post("/schedule", json={**JOB, "tags": tags})
        assert answer.status_code == 422, tags
        assert answer.json()["detail"][0]["loc"][:2] == ["body", "tags"], tags
    assert (await edge.get("/jobs")).json() == {"jobs": [], "next": None}
    for tags in (["a"] * 8, ["x" * 64], ["a.b:c/d-e_f"]):
        assert (await edge.post("/schedule", json={**JOB, "tags": tags})).status_code == 200


async def test_a_request_without_tags_answers_and_stores_exactly_as_before(http):
    offset = await schedule(http)
    assert (await http.get(f"/jobs/{offset}")).json()["request"] == JOB
    tagged = await schedule(http, tags=["eu", "a.b:c/d-e_f"])
    assert (await http.get(f"/jobs/{tagged}")).json()["request"] == {
        **JOB,
        "tags": ["eu", "a.b:c/d-e_f"],
    }


async def test_the_list_filters_by_tag_fn_and_state_and_shows_each_row(http):
    eu = await schedule(http, tags=["eu"])
    other = await schedule(http, fn="other_fn", tags=["us"])
    done = await schedule(http, tags=["eu", "nightly"])
    await finish(http, done, 2)
    failed = await schedule(http)
    await finish(http, failed, 1, "error")

    async def offsets(**query: str) -> list[int]:
        answer = await http.get("/jobs", params=query)
        assert answer.status_code == 200, answer.text
        return [row["offset"] for row in answer.json()["jobs"]]

    assert await offsets() == [failed, done, other, eu]
    assert await offsets(tag="eu") == [done, eu]
    assert await offsets(fn="other_fn") == [other]
    assert await offsets(state="done") == [done]
    assert await offsets(state="queued", tag="eu") == [eu]
    rows = {row["offset"]: row for row in (await http.get("/jobs")).json()["jobs"]}
    assert rows[done]["steps"] == 2
    assert rows[done]["duration_seconds"] >= 0
    assert rows[done]["tags"] == ["eu", "nightly"]
    assert rows[failed]["error"] == "error"
    assert rows[failed]["steps"] == 1
    assert rows[eu]["duration_seconds"] is None
    assert set(rows[eu]) == {
        "offset",
        "fn",
        "state",
        "tags",
        "steps",
        "created_at",
        "updated_at",
        "duration_seconds",
        "error",
    }


async def test_pages_follow_the_cursor_to_the_end_each_job_once(http):
    created = [await schedule(http) for _ in range(5)]
    seen: list[int] = []
    answer = (await http.get("/jobs", params={"limit": 2})).json()
    pages = 1
    while True:
        seen += [row["offset"] for row in answer["jobs"]]
        if answer["next"] is None:
            break
        answer = (await http.get("/jobs", params={"limit": 2, "cursor": answer["next"]})).json()
        pages += 1
    assert seen == created[::-1]
    assert pages == 3


def forged(text: bytes) -> str:
    return base64.urlsafe_b64encode(text).decode().rstrip("=")


async def test_a_cursor_not_handed_out_is_422(edge):
    for _ in range(3):
        await schedule(edge)
    handed_out = (await edge.get("/jobs", params={"limit": 1})).json()["next"]
    assert (await edge.get("/jobs", params={"cursor": handed_out})).status_code == 200
    for cursor in (
        "nonsense",
        handed_out[:-1],
        handed_out + "A",
        forged(b"before:-1"),
        forged(b"before:99999999999999999999"),
        forged(b"before:9223372036854775808"),
        forged(b"after:3"),
        forged(b"before:03"),
        "x" * 65,
    ):
        answer = await edge.get("/jobs", params={"cursor": cursor})
        assert answer.status_code == 422, (cursor, answer.text)
        assert answer.json()["detail"][0]["loc"] == ["query", "cursor"]


async def test_filters_and_limits_outside_the_contract_are_422(edge):
    for query in (
        {"limit": "501"},
        {"limit": "0"},
        {"state": "sleeping"},
        {"tag": "no spaces"},
        {"since": "yesterday"},
        {"fn": "x" * 201},
    ):
        assert (await edge.get("/jobs", params=query)).status_code == 422, query
    assert (await edge.get("/jobs", params={"limit": "500"})).status_code == 200


async def test_filters_no_ledger_can_read_are_422_not_500(http):
    # Found by review: a time that cannot be written in UTC (0001-01-01 east of Greenwich,
    # 9999-12-31 west of it) raised OverflowError in both ledgers, and a NUL in `fn` broke
    # PostgreSQL's query: 500 on GET /jobs, and a feed cut after its 200
    await schedule(http)
    for query in (
        {"since": "0001-01-01T00:00:00+01:00"},
        {"until": "9999-12-31T23:59:59-01:00"},
        {"fn": "a\x00b"},
        {"fn": "\x85"},
    ):
        answer = await http.get("/jobs", params=query)
        assert answer.status_code == 422, (query, answer.text)
        assert answer.json()["detail"][0]["loc"][:2] == ["query", next(iter(query))]
        if "fn" in query:  # the feed filters on fn too (not on times)
            async with http.stream("GET", "/jobs/stream", params=query) as answer:
                assert answer.status_code == 422, query
    for query in (
        {"since": "0001-01-01T00:00:00Z"},
        {"since": "0001-01-01T00:00:00-01:00"},
        {"until": "9999-12-31T23:59:59+01:00"},
        {"since": "2020-01-01T00:00:00+23:59"},
    ):
        assert (await http.get("/jobs", params=query)).status_code == 200, query


async def test_stats_count_the_ledger_and_read_the_queues(http, amqp_url):
    for _ in range(3):
        await schedule(http)  # no worker here: the three wait in jobcast.jobs
    done = await schedule(http)
    await finish(http, done, 1)
    async with await aio_pika.connect(amqp_url) as connection:
        channel = await connection.channel()
        for n in range(2):
            await channel.default_exchange.publish(
                aio_pika.Message(b"dead %d" % n), routing_key=DEAD_QUEUE.name
            )
        # a "worker": one consumer holding one job unacked
        await channel.set_qos(prefetch_count=1)
        queue = await channel.get_queue(JOBS_QUEUE.name, ensure=False)
        await queue.consume(hold)
        answer = await http.get("/stats", params={"minutes": 5})
        assert answer.status_code == 200, answer.text
        stats = answer.json()
    assert stats["counts"]["queued"] == 3
    assert stats["counts"]["done"] == 1
    assert stats["counts"]["failed"] == 0
    assert stats["completed_per_minute"] == [0, 0, 0, 0, 1]
    assert stats["throughput_per_second"] == pytest.approx(1 / 60)
    assert (stats["jobs_waiting"], stats["workers"], stats["dead_letters"]) == (3, 1, 2)
    assert stats["minutes"] == 5


async def test_stats_window_outside_1_to_1440_minutes_is_422(edge):
    for minutes in ("0", "1441", "x"):
        assert (await edge.get("/stats", params={"minutes": minutes})).status_code == 422
    answer = (await edge.get("/stats", params={"minutes": "1440"})).json()
    assert len(answer["completed_per_minute"]) == 1440
    assert (await edge.get("/stats")).json()["minutes"] == 15


async def test_the_amqp_intake_refuses_bad_tags_and_takes_good_ones(http, amqp_url):
    async with await aio_pika.connect(amqp_url) as connection:
        channel = await connection.channel()
        callback = await channel.declare_queue(exclusive=True)
        answers = []
        for n, tags in enumerate((["bad tag"], ["ok"])):
            await channel.default_exchange.publish(
                aio_pika.Message(
                    orjson.dumps({**JOB, "tags": tags}),
                    reply_to=callback.name,
                    correlation_id=str(n),
                ),
                routing_key=SCHEDULE_QUEUE.name,
            )
        async with callback.iterator(timeout=20) as incoming:
            async for message in incoming:
                await message.ack()
                answers.append(orjson.loads(message.body))
                if len(answers) == 2:
                    break
    refused = next(a for a in answers if "error" in a)
    accepted = next(a for a in answers if "offset" in a)
    assert refused["error"] == "invalid_request"
    assert "tags" in refused["detail"]
    rows = (await http.get("/jobs", params={"tag": "ok"})).json()["jobs"]
    assert [row["offset"] for row in rows] == [accepted["offset"]]
