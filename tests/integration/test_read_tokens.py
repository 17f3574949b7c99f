"""Scoped read tokens and rate limits with JOBCAST_AUTH=on, in process on the real broker: a
token reads the jobs it names and nothing else, read only, also as `?token=` on the stream; a
key over its rate gets 429 with Retry-After, and others do not."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from contracts import Reply
from contracts.principals import Principal, digest, new_secret
from jobcast.gateway import create_app
from jobcast.settings import Settings
from tests.support.waiting import eventually

JOB = {"deployment": "Docker", "framework": "FastAPI", "fn": "default_fn"}
NOT_FOUND = b'{"detail":"Offset not found"}'


class Gateway:
    """A gateway with auth on (no worker): its client, ledger and the keys' headers."""

    def __init__(self, http: httpx.AsyncClient, app: Any) -> None:
        self.http, self.app, self.ledger = http, app, app.state.ledger
        self.secrets: dict[str, str] = {}

    def key(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secrets[name]}"}

    async def schedule(self, name: str, **extra: object) -> dict[str, Any]:
        answer = await self.http.post("/schedule", json={**JOB, **extra}, headers=self.key(name))
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    async def finish(self, offset: int) -> None:
        await self.ledger.store_replies(
            [
                Reply(offset=offset, seq=0, kind="result", value="r"),
                Reply(offset=offset, seq=1, kind="done", value="done"),
            ]
        )


async def started(tmp_path: Path, amqp_url: str, **settings: Any) -> AsyncIterator[Gateway]:
    database_url = f"sqlite:///{tmp_path / 'l.db'}"
    app = create_app(Settings(amqp_url=amqp_url, database_url=database_url, **settings))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://jobcast") as http:
            gateway = Gateway(http, app)
            for name in ("alice", "bob", "gone"):
                gateway.secrets[name] = new_secret()
                await gateway.ledger.add_key(name, digest(gateway.secrets[name]), False)
            yield gateway


@pytest.fixture
async def gw(tmp_path: Path, amqp_url: str) -> AsyncIterator[Gateway]:
    async for gateway in started(tmp_path, amqp_url, auth="on"):
        yield gateway


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_schedule_answers_a_token_that_reads_that_job_and_no_other(gw: Gateway) -> None:
    mine = await gw.schedule("alice")
    other = await gw.schedule("alice")  # alice's too, but not named by the first token
    bobs = await gw.schedule("bob")
    await gw.finish(mine["offset"])
    token = mine["read_token"]
    assert token.startswith("jcr_")
    assert set(mine) == {"offset", "read_token"}
    for path in ("/messages/{}", "/jobs/{}", "/messages/{}/stream"):
        read = await gw.http.get(path.format(mine["offset"]), headers=bearer(token))
        assert read.status_code == 200, (path, read.text)
        for offset in (other["offset"], bobs["offset"], 10_000):
            refused = await gw.http.get(path.format(offset), headers=bearer(token))
            assert (refused.status_code, refused.content) == (404, NOT_FOUND), (path, offset)
    read = await gw.http.get(f"/messages/{mine['offset']}", headers=bearer(token))
    assert read.json() == ["r", "done"]


async def test_a_token_on_the_stream_as_query_follows_the_job(gw: Gateway) -> None:
    job = await gw.schedule("alice")
    await gw.finish(job["offset"])
    path = f"/messages/{job['offset']}/stream"
    async with gw.http.stream("GET", path, params={"token": job["read_token"]}) as stream:
        assert stream.status_code == 200
        body = (await stream.aread()).decode()
    assert "event: result" in body
    assert "event: done" in body
    assert (await gw.http.get(path)).status_code == 401  # without it
    refused = await gw.http.get(path, params={"token": gw.secrets["alice"]})  # never a key in a URL
    assert refused.status_code == 401


async def test_a_token_cannot_write_list_or_mint(gw: Gateway) -> None:
    job = await gw.schedule("alice", delay_seconds=600)
    token = bearer(job["read_token"])
    offset = job["offset"]
    for method, path, body in [
        ("POST", "/schedule", JOB),
        ("POST", "/schedule/batch", {"jobs": [JOB]}),
        ("POST", f"/jobs/{offset}/cancel", None),
        ("DELETE", f"/jobs/{offset}", None),
        ("POST", "/tokens", {"offsets": [offset]}),
        ("GET", "/jobs", None),
        ("GET", "/jobs/stream", None),
        ("GET", "/metrics", None),
    ]:
        answer = await gw.http.request(method, path, json=body, headers=token)
        assert answer.status_code == 403, (method, path, answer.text)
    assert (await gw.http.get(f"/jobs/{offset}")).status_code == 401
    state = (await gw.http.get(f"/jobs/{offset}", headers=gw.key("alice"))).json()["state"]
    assert state == "scheduled"  # the cancel did nothing


async def test_an_expired_or_tampered_token_reads_nothing(gw: Gateway) -> None:
    job = await gw.schedule("alice")
    path = f"/jobs/{job['offset']}"
    issued = await gw.http.post(
        "/tokens", json={"offsets": [job["offset"]], "ttl_seconds": 1}, headers=gw.key("alice")
    )
    assert issued.status_code == 200, issued.text
    short = issued.json()["read_token"]
    assert (await gw.http.get(path, headers=bearer(short))).status_code == 200
    gate = gw.app.state.read_gate
    now = gate._clock
    gate._clock = lambda: now() + 2  # the token's second has passed; the default one's not
    expired = await gw.http.get(path, headers=bearer(short))
    assert expired.status_code == 401
    assert expired.headers["www-authenticate"] == "Bearer"
    assert (await gw.http.get(path, headers=bearer(job["read_token"]))).status_code == 200
    gate._clock = now
    token = job["read_token"]
    payload, mac = token.removeprefix("jcr_").split(".")
    flip = {"A": "B"}
    for changed in (
        f"jcr_{payload[:-1]}{flip.get(payload[-1], 'A')}.{mac}",
        f"jcr_{payload}.{flip.get(mac[0], 'A')}{mac[1:]}",
    ):
        assert (await gw.http.get(path, headers=bearer(changed))).status_code == 401


async def test_a_token_with_a_payload_that_is_not_ascii_is_401_not_500(gw: Gateway) -> None:
    # Found by review: the mac of a payload was computed on its ASCII bytes, which raised for
    # any other character before a key was looked at: a 500 for anyone, without a key
    job = await gw.schedule("alice")
    for path in (f"/jobs/{job['offset']}", f"/messages/{job['offset']}/stream"):
        latin1 = "Bearer jcr_\xe9.AAAA".encode("latin-1")  # as a header can carry it
        answer = await gw.http.get(path, headers={"Authorization": latin1})
        assert answer.status_code == 401, (path, answer.text)
        answer = await gw.http.get(path, params={"token": "jcr_\u00e9.AAAA"})
        assert answer.status_code == 401, (path, answer.text)


async def test_post_tokens_mints_for_own_jobs_only(gw: Gateway) -> None:
    a1, a2 = (await gw.schedule("alice"))["offset"], (await gw.schedule("alice"))["offset"]
    bobs = (await gw.schedule("bob"))["offset"]
    issued = await gw.http.post("/tokens", json={"offsets": [a1, a2]}, headers=gw.key("alice"))
    token = bearer(issued.json()["read_token"])
    for offset in (a1, a2):
        assert (await gw.http.get(f"/jobs/{offset}", headers=token)).status_code == 200
    for offsets in ([bobs], [a1, bobs], [10_000]):
        refused = await gw.http.post("/tokens", json={"offsets": offsets}, headers=gw.key("alice"))
        assert (refused.status_code, refused.content) == (404, NOT_FOUND)
    for body in ({}, {"offsets": [a1], "batch": "b"}, {"offsets": [a1], "ttl_seconds": 0}):
        invalid = await gw.http.post("/tokens", json=body, headers=gw.key("alice"))
        assert invalid.status_code == 422
    assert (await gw.http.post("/tokens", json={"offsets": [a1]})).status_code == 401


async def test_a_batch_token_reads_the_batchs_jobs_only(gw: Gateway) -> None:
    batch = await gw.http.post(
        "/schedule/batch", json={"jobs": [JOB, JOB], "batch": "b1"}, headers=gw.key("alice")
    )
    assert batch.status_code == 200, batch.text
    answer = batch.json()
    loose = (await gw.schedule("alice"))["offset"]
    token = bearer(answer["read_token"])
    for offset in answer["offsets"]:
        assert (await gw.http.get(f"/jobs/{offset}", headers=token)).status_code == 200
    refused = await gw.http.get(f"/jobs/{loose}", headers=token)
    assert (refused.status_code, refused.content) == (404, NOT_FOUND)
    named = await gw.http.post("/tokens", json={"batch": "b1"}, headers=gw.key("bob"))
    bobs_token = bearer(named.json()["read_token"])  # bob's batch b1: none of alice's jobs
    refused = await gw.http.get(f"/jobs/{answer['offsets'][0]}", headers=bobs_token)
    assert (refused.status_code, refused.content) == (404, NOT_FOUND)


async def _stream_ends(gw: Gateway, path: str, **request: Any) -> str:
    """The whole body of a stream that should end by itself within 10 s."""
    async with asyncio.timeout(10), gw.http.stream("GET", path, **request) as stream:
        assert stream.status_code == 200, path
        return (await stream.aread()).decode()


async def test_an_open_stream_ends_once_its_key_is_revoked_or_its_token_expires(
    gw: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Found by review: a stream is one request, its key checked once: the feed (which never
    # ends) and a long job's stream went on after `jobcast keys revoke`, and a token's stream
    # after the token expired, though both are documented as reading only until then
    monkeypatch.setattr("query.sse.RECHECK_SECONDS", 0.2)
    monkeypatch.setattr("jobcast.http.auth.KEYS_FRESH_SECONDS", 0.0)
    running = await gw.schedule("alice")  # no worker: it stays queued, its stream open
    token = (
        await gw.http.post(
            "/tokens",
            json={"offsets": [running["offset"]], "ttl_seconds": 1},
            headers=gw.key("alice"),
        )
    ).json()["read_token"]
    body = await _stream_ends(gw, f"/messages/{running['offset']}/stream", headers=bearer(token))
    assert "event: done" not in body  # ended by the token's expiry, not by the job
    feed = asyncio.create_task(_stream_ends(gw, "/jobs/stream", headers=gw.key("bob")))
    job = asyncio.create_task(
        _stream_ends(gw, f"/messages/{running['offset']}/stream", headers=gw.key("alice"))
    )
    await asyncio.sleep(0.5)
    assert not feed.done()
    assert not job.done()
    await gw.ledger.revoke_key("bob")
    await feed
    assert not job.done()  # alice's key is not revoked
    await gw.ledger.revoke_key("alice")
    await job
    assert (await gw.http.get("/jobs/stream", headers=gw.key("bob"))).status_code == 403


async def test_revoking_the_key_ends_its_tokens(gw: Gateway) -> None:
    job = await gw.schedule("gone")
    path = f"/jobs/{job['offset']}"
    assert (await gw.http.get(path, headers=bearer(job["read_token"]))).status_code == 200
    await gw.ledger.revoke_key("gone")
    assert (await gw.http.get(path, headers=bearer(job["read_token"]))).status_code == 403


async def test_with_auth_off_the_answer_is_the_seeds(tmp_path: Path, amqp_url: str) -> None:
    async for gateway in started(tmp_path, amqp_url):
        answer = await gateway.http.post("/schedule", json=JOB)
        assert answer.content == b'{"offset":0}'
        batch = await gateway.http.post("/schedule/batch", json={"jobs": [JOB]})
        assert batch.json() == {"offsets": [1], "tag": None}
        assert (await gateway.http.post("/tokens", json={"offsets": [0]})).status_code == 404


@pytest.fixture
async def limited(tmp_path: Path, amqp_url: str) -> AsyncIterator[Gateway]:
    async for gateway in started(tmp_path, amqp_url, auth="on", rate_limit="0.5/s,burst=3"):
        yield gateway


async def test_over_the_burst_a_key_gets_429_with_retry_after_and_others_do_not(
    limited: Gateway,
) -> None:
    gw = limited
    clock = [1000.0]
    gw.app.state.rate_limiter._clock = lambda: clock[0]
    for _ in range(3):
        await gw.schedule("alice")
    refused = await gw.http.post("/schedule", json=JOB, headers=gw.key("alice"))
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "2"
    batch = await gw.http.post("/schedule/batch", json={"jobs": [JOB]}, headers=gw.key("alice"))
    assert batch.status_code == 429
    await gw.schedule("bob")  # another key: its own bucket
    clock[0] += 2
    await gw.schedule("alice")  # recovered after the wait
    counted = gw.app.state.metrics.registry.get_sample_value("jobcast_rate_limited_total")
    assert counted == 2


async def test_a_token_reads_only_its_owners_jobs_even_for_an_offset_it_names(gw: Gateway) -> None:
    """A token naming another owner's offset (once minted for bob when idempotency keys were one
    for the whole ledger, so his repeat of alice's key was answered her offset) still reads
    nothing of hers."""
    offset = (await gw.schedule("alice"))["offset"]
    named = gw.app.state.read_gate.mint_token("bob", offsets=[offset])
    for path in (f"/jobs/{offset}", f"/messages/{offset}", f"/messages/{offset}/stream"):
        refused = await gw.http.get(path, headers=bearer(named))
        assert (refused.status_code, refused.content) == (404, NOT_FOUND), path
    issued = await gw.http.post("/tokens", json={"offsets": [offset]}, headers=gw.key("bob"))
    assert (issued.status_code, issued.content) == (404, NOT_FOUND)


@pytest.fixture
async def few_feeds(tmp_path: Path, amqp_url: str) -> AsyncIterator[Gateway]:
    async for gateway in started(tmp_path, amqp_url, auth="on", max_feeds_per_key=2):
        yield gateway


async def test_a_key_holds_at_most_its_feeds_open_and_gets_one_back_when_one_closes(
    few_feeds: Gateway,
) -> None:
    # Found by review: every stored reply wakes every open feed, and one key could hold as
    # many as the connection limit (4096): its feeds multiplied the gateway's work per reply
    gw = few_feeds
    slots = gw.app.state.feed_slots
    alice = Principal(name="alice", admin=False)

    def feed(name: str) -> asyncio.Task[httpx.Response]:
        return asyncio.create_task(gw.http.get("/jobs/stream", headers=gw.key(name)))

    async def alices() -> int:
        return int(slots.open_for(alice))

    open_feeds = [feed("alice"), feed("alice")]
    await eventually(alices, until=lambda n: n == 2)
    async with asyncio.timeout(5):  # refused at once, not streaming
        refused = await gw.http.get("/jobs/stream", headers=gw.key("alice"))
    assert refused.status_code == 429
    assert "at most 2 at once (JOBCAST_MAX_FEEDS_PER_KEY)" in refused.json()["detail"]
    bobs = feed("bob")  # another key is not held back
    await asyncio.sleep(0.3)
    assert not bobs.done()
    open_feeds[0].cancel()  # alice's client goes away
    await eventually(alices, until=lambda n: n == 1)
    again = feed("alice")
    await asyncio.sleep(0.3)
    assert not again.done()  # streaming, not refused
    for task in (open_feeds[1], bobs, again):
        task.cancel()
    await asyncio.gather(*open_feeds, bobs, again, return_exceptions=True)
    await eventually(alices, until=lambda n: n == 0)
