"""GET /jobs/stream against `jobcast serve`: one feed of many jobs, live, resumed after a
dropped connection with Last-Event-ID, without gap or repeat."""

import asyncio

import httpx

from tests.e2e.sse import read_events

JOB = {"deployment": "Docker", "framework": "FastAPI", "fn": "default_fn"}


async def schedule(http: httpx.AsyncClient, **extra: object) -> int:
    answer = await http.post("/schedule", json={**JOB, **extra})
    assert answer.status_code == 200, answer.text
    return int(answer.json()["offset"])


async def test_the_feed_resumes_after_a_dropped_connection_without_gap_or_repeat(server):
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        offsets = [await schedule(http) for _ in range(3)]
        # the connection is dropped after 5 events, while the jobs still run (0.2 s a step)
        first = await read_events(http, "/jobs/stream?after=0", limit=5)
        rest = await read_events(
            http, "/jobs/stream", headers={"Last-Event-ID": first[-1].id}, limit=7
        )
    events = first + rest
    assert [int(e.id) for e in events] == list(range(1, 13))
    for offset in offsets:
        mine = [e for e in events if e.data["offset"] == offset]
        assert [e.data["seq"] for e in mine] == [0, 1, 2, 3]
        assert [e.event for e in mine] == ["result", "result", "result", "done"]


async def test_the_feed_from_now_starts_with_its_position_and_shows_only_the_tag_asked(server):
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        before = await schedule(http, tags=["feed"])
        await read_events(http, "/jobs/stream?after=0&tag=feed", limit=4)  # it has ended
        async with http.stream("GET", "/jobs/stream?tag=feed") as response:
            lines = response.aiter_lines()
            position = [await anext(lines), await anext(lines), await anext(lines)]
        assert position == [": position", "id: 4", ""]  # after the 4 replies already stored
        reading = asyncio.create_task(
            read_events(http, "/jobs/stream?tag=feed", headers={"Last-Event-ID": "4"}, limit=4)
        )
        untagged = await schedule(http)
        tagged = await schedule(http, tags=["other", "feed"])
        events = await asyncio.wait_for(reading, 30)
    assert {e.data["offset"] for e in events} == {tagged}
    assert [e.data["seq"] for e in events] == [0, 1, 2, 3]
    assert before < untagged < tagged


async def test_a_bad_filter_or_last_event_id_is_422(server):
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        for path, headers in (
            ("/jobs/stream?tag=a%20b", {}),
            ("/jobs/stream?state=sleeping", {}),
            ("/jobs/stream", {"Last-Event-ID": "-1"}),
            ("/jobs/stream", {"Last-Event-ID": "x"}),
            ("/jobs/stream?after=99999999999999999999", {}),
        ):
            answer = await http.get(path, headers=headers)
            assert answer.status_code == 422, (path, headers, answer.text)
