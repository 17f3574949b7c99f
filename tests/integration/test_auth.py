"""JOBCAST_AUTH=on, in process on the real broker and each ledger: API keys are required, a job
belongs to the key that scheduled it, and another key cannot tell it from an offset never
handed out (same status, same bytes, same time); an admin key sees every job."""

import statistics
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from contracts import Reply
from contracts.principals import digest, new_secret
from jobcast.gateway import create_app
from jobcast.settings import Settings

JOB = {"deployment": "Docker", "framework": "FastAPI", "fn": "default_fn"}
NOT_FOUND = b'{"detail":"Offset not found"}'


class Keys:
    """The keys of one test: alice, bob (plain), root (admin), gone (revoked)."""

    def __init__(self) -> None:
        self.secrets: dict[str, str] = {}

    def __call__(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secrets[name]}"}


async def gateway(
    database_url: str, amqp_url: str, auth: str
) -> AsyncIterator[tuple[httpx.AsyncClient, Keys]]:
    app = create_app(Settings(amqp_url=amqp_url, database_url=database_url, auth=auth))
    keys = Keys()
    async with app.router.lifespan_context(app):
        ledger = app.state.ledger
        for name, admin in (("alice", False), ("bob", False), ("root", True), ("gone", False)):
            keys.secrets[name] = new_secret()
            await ledger.add_key(name, digest(keys.secrets[name]), admin)
        await ledger.revoke_key("gone")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://jobcast") as client:
            client.ledger = ledger  # type: ignore[attr-defined]
            yield client, keys


@pytest.fixture
async def on(database_url: str, amqp_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, Keys]]:
    """A gateway with JOBCAST_AUTH=on and no worker, on each ledger in turn."""
    async for pair in gateway(database_url, amqp_url, "on"):
        yield pair


@pytest.fixture
async def off(sqlite_url: str, amqp_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, Keys]]:
    async for pair in gateway(sqlite_url, amqp_url, "off"):
        yield pair


async def schedule(http: httpx.AsyncClient, headers: dict[str, str], **extra: object) -> int:
    answer = await http.post("/schedule", json={**JOB, **extra}, headers=headers)
    assert answer.status_code == 200, answer.text
    return int(answer.json()["offset"])


async def finish(http: httpx.AsyncClient, offset: int) -> None:
    replies = [
        Reply(offset=offset, seq=0, kind="result", value="r"),
        Reply(offset=offset, seq=1, kind="done", value="done"),
    ]
    await http.ledger.store_replies(replies)  # type: ignore[attr-defined]


def reads(offset: int) -> list[tuple[str, str]]:
    """Every route that names one job (the stream too: its 404 is answered before streaming)."""
    return [
        ("GET", f"/messages/{offset}"),
        ("GET", f"/messages/{offset}?wait=1"),
        ("GET", f"/jobs/{offset}"),
        ("GET", f"/messages/{offset}/stream"),
        ("POST", f"/jobs/{offset}/cancel"),
        ("DELETE", f"/jobs/{offset}"),
    ]


KEYED = [
    ("POST", "/schedule"),
    ("POST", "/schedule/batch"),
    ("GET", "/jobs"),
    ("GET", "/jobs/stream"),
    ("GET", "/stats"),
    ("GET", "/pipelines"),
    ("GET", "/metrics"),
    *reads(0),
]


async def test_without_a_key_with_an_unknown_or_a_revoked_one_every_route_is_refused(on):
    http, keys = on
    for method, path in KEYED:
        missing = await http.request(method, path)
        assert missing.status_code == 401, (method, path, missing.text)
        assert missing.headers["www-authenticate"] == "Bearer"
        for header in (f"Bearer {new_secret()}", "Bearer not-a-key", "Basic YTpi", "Bearer "):
            unknown = await http.request(method, path, headers={"Authorization": header})
            assert unknown.status_code == 401, (method, path, header)
            assert unknown.headers["www-authenticate"] == "Bearer"
        revoked = await http.request(method, path, headers=keys("gone"))
        assert revoked.status_code == 403, (method, path, revoked.text)
    assert (await http.get("/jobs", headers=keys("alice"))).json() == {"jobs": [], "next": None}
    # open to anyone: the probes, the dashboard's page and files, the API's descriptions
    for path in ("/health", "/ready", "/", "/dashboard/app.js", "/openapi.json"):
        assert (await http.get(path)).status_code == 200, path


async def test_metrics_need_an_admin_key(on):
    http, keys = on
    assert (await http.get("/metrics", headers=keys("alice"))).status_code == 403
    answer = await http.get("/metrics", headers=keys("root"))
    assert answer.status_code == 200
    assert "jobcast" in answer.text


async def test_another_keys_job_answers_as_an_offset_never_handed_out(on):
    http, keys = on
    mine = await schedule(http, keys("alice"))
    await finish(http, mine)
    never = mine + 1000
    for (method, path), (_, unknown_path) in zip(reads(mine), reads(never), strict=True):
        theirs = await http.request(method, path, headers=keys("bob"))
        unknown = await http.request(method, unknown_path, headers=keys("bob"))
        assert (theirs.status_code, theirs.content) == (404, NOT_FOUND), (method, path)
        assert (unknown.status_code, unknown.content) == (404, NOT_FOUND), (method, path)
        assert theirs.headers == unknown.headers
    # the owner and an admin read it; the job is still there after bob's cancel and delete
    assert (await http.get(f"/messages/{mine}", headers=keys("alice"))).json() == ["r", "done"]
    assert (await http.get(f"/jobs/{mine}", headers=keys("root"))).json()["state"] == "done"
    assert (await http.delete(f"/jobs/{mine}", headers=keys("alice"))).status_code == 204


async def test_counting_offsets_with_one_key_finds_only_its_own_jobs(on):
    http, keys = on
    alices = {await schedule(http, keys("alice")) for _ in range(3)}
    bobs = {await schedule(http, keys("bob")) for _ in range(3)}
    batch = await http.post("/schedule/batch", json={"jobs": [JOB, JOB]}, headers=keys("bob"))
    assert batch.status_code == 200, batch.text
    bobs |= set(batch.json()["offsets"])
    top = max(alices | bobs) + 3
    found = {
        offset
        for offset in range(top)
        if (await http.get(f"/jobs/{offset}", headers=keys("alice"))).status_code == 200
    }
    assert found == alices
    seen = {
        offset
        for offset in range(top)
        if (await http.get(f"/messages/{offset}", headers=keys("root"))).status_code == 200
    }
    assert seen == alices | bobs


async def test_the_list_shows_a_key_its_own_jobs_and_an_admin_every_job(on):
    http, keys = on
    alices = [await schedule(http, keys("alice"), tags=["t"]) for _ in range(2)]
    bobs = [await schedule(http, keys("bob"), tags=["t"]) for _ in range(2)]

    async def listed(name: str, query: str = "") -> list[int]:
        answer = await http.get(f"/jobs{query}", headers=keys(name))
        assert answer.status_code == 200, answer.text
        return [row["offset"] for row in answer.json()["jobs"]]

    assert await listed("alice") == alices[::-1]
    assert await listed("alice", "?tag=t&state=queued") == alices[::-1]
    assert await listed("bob", "?limit=1") == bobs[-1:]
    assert await listed("root") == sorted(alices + bobs, reverse=True)


async def test_the_feed_shows_a_key_only_its_own_jobs_replies(on):
    http, keys = on
    ledger = http.ledger  # type: ignore[attr-defined]
    mine = await schedule(http, keys("alice"))
    theirs = await schedule(http, keys("bob"))
    await finish(http, theirs)
    await finish(http, mine)
    from contracts.listing import JobFilter

    alice = [reply.offset for _, reply in await ledger.feed(JobFilter(owner="alice"), 0, 100)]
    everyone = [reply.offset for _, reply in await ledger.feed(JobFilter(), 0, 100)]
    assert alice == [mine, mine]
    assert sorted(everyone) == sorted([mine, mine, theirs, theirs])


async def test_another_keys_job_takes_as_long_to_refuse_as_an_unknown_offset(on):
    http, keys = on
    mine = await schedule(http, keys("alice"))
    await finish(http, mine)
    never = mine + 1_000_000

    async def medians(path: str, unknown: str) -> tuple[float, float]:
        # NOTE: interleaved, so a machine that slows down halfway slows both alike
        took: dict[str, list[float]] = {path: [], unknown: []}
        for _ in range(50):
            for each in (path, unknown):
                started = time.perf_counter()
                answer = await http.get(each, headers=keys("bob"))
                took[each].append(time.perf_counter() - started)
                assert answer.status_code == 404
        return statistics.median(took[path]), statistics.median(took[unknown])

    for path, unknown in (
        (f"/jobs/{mine}", f"/jobs/{never}"),
        (f"/messages/{mine}", f"/messages/{never}"),
    ):
        await medians(path, unknown)  # warm up
        theirs, nobody = await medians(path, unknown)
        assert abs(theirs - nobody) < max(theirs, nobody) * 0.5 + 0.002, (path, theirs, nobody)


async def test_with_auth_off_no_key_is_asked_for_and_jobs_have_no_owner(off):
    http, keys = off
    offset = await schedule(http, {})
    other = await schedule(http, keys("alice"))  # a key sent is not even read
    assert (await http.get(f"/jobs/{offset}")).status_code == 200
    assert (await http.get(f"/jobs/{other}", headers=keys("gone"))).status_code == 200
    assert (await http.get("/metrics")).status_code == 200
    assert await http.ledger.job_owner(other) is None  # type: ignore[attr-defined]


async def test_an_idempotency_key_another_key_used_tells_bob_nothing(on):
    http, key = on
    order = {"Idempotency-Key": "order-7"}
    alices = await schedule(http, {**key("alice"), **order})
    # bob repeating alice's key and request gets a job of his own, not her offset
    bobs = await schedule(http, {**key("bob"), **order})
    assert bobs != alices
    assert (await http.get(f"/jobs/{bobs}", headers=key("bob"))).status_code == 200
    # another request under a key she used is no 409 naming her job: a new job of bob's
    other = {"Idempotency-Key": "order-8"}
    hers = await schedule(http, {**key("alice"), **other})
    answer = await http.post("/schedule", json={**JOB, "fn": "x"}, headers={**key("bob"), **other})
    assert answer.status_code == 200, answer.text
    assert answer.json()["offset"] not in (alices, hers, bobs)
    # each key's own repeat is its own job
    assert await schedule(http, {**key("alice"), **order}) == alices
    assert await schedule(http, {**key("bob"), **order}) == bobs
    conflict = await http.post(
        "/schedule", json={**JOB, "fn": "x"}, headers={**key("alice"), **order}
    )
    assert conflict.status_code == 409
    assert conflict.json()["detail"] == (
        f"idempotency key 'order-7' was used for another request (offset {alices})"
    )
