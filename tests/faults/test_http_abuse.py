"""Scenario 9: bad HTTP input gets a clear 4xx, never a 500 or a stack trace, also in a burst."""

import asyncio
from collections import Counter

import httpx
import pytest

from tests.faults.conftest import Cluster

pytestmark = pytest.mark.faults

GOOD = {"deployment": "Docker", "framework": "FastAPI", "fn": "counted"}
LIMIT = 64 * 1024  # JOBCAST_MAX_BODY_BYTES default

BAD_BODIES = {
    "malformed JSON": b'{"deployment": "Docker", ',
    "not an object": b'["Docker", "FastAPI", "counted"]',
    "wrong type": b'{"deployment": 7, "framework": "FastAPI", "fn": "counted"}',
    "missing field": b'{"deployment": "Docker", "framework": "FastAPI"}',
    "unknown field": b'{"deployment": "Docker", "framework": "FastAPI", "fn": "x", "cpu": 4}',
    "empty string": b'{"deployment": "", "framework": "FastAPI", "fn": "counted"}',
    "null": b"null",
    "empty body": b"",
    "not UTF-8": b'{"deployment": "\xff\xfe", "framework": "F", "fn": "counted"}',
}
BAD_OFFSETS = ["-1", "abc", "1.5", "0x10", "99999999999999999999999999", "%20", "1e3"]


def _assert_clear(answer: httpx.Response, status: int) -> None:
    assert answer.status_code == status, (answer.request.url, answer.status_code, answer.text)
    assert "Traceback" not in answer.text
    assert answer.json()["detail"], answer.text


async def test_bad_http_input_gets_a_clear_answer_and_never_a_500(cluster: Cluster):
    async with httpx.AsyncClient(base_url=cluster.checker.gateway_url, timeout=30) as http:
        for name, body in BAD_BODIES.items():
            answer = await http.post(
                "/schedule", content=body, headers={"content-type": "application/json"}
            )
            _assert_clear(answer, 422)
            assert name
            assert answer.json()["detail"]
        # the 422 says which field is wrong
        wrong = await http.post("/schedule", json={**GOOD, "framework": 7})
        assert "framework" in wrong.text

        # too large: refused before parsing, by Content-Length or while streaming (chunked)
        _assert_clear(
            await http.post(
                "/schedule",
                content=b"x" * (LIMIT + 1),
                headers={"content-type": "application/json"},
            ),
            413,
        )

        async def chunks():  # type: ignore[no-untyped-def]
            for _ in range(LIMIT // 1024 + 2):
                yield b" " * 1024

        _assert_clear(
            await http.post(
                "/schedule", content=chunks(), headers={"content-type": "application/json"}
            ),
            413,
        )
        _assert_clear(
            await http.post("/schedule", json=GOOD, headers={"Idempotency-Key": "k" * 500}), 422
        )

        for path in ("/messages", "/jobs"):
            for bad in BAD_OFFSETS:
                _assert_clear(await http.get(f"{path}/{bad}"), 422)
            missing = await http.get(f"{path}/424242")
            assert (missing.status_code, missing.json()) == (404, {"detail": "Offset not found"})
        _assert_clear(await http.get("/messages/0?wait=-1"), 422)

        # nothing above was scheduled
        first = await http.post("/schedule", json=GOOD)
        assert first.json() == {"offset": 0}


async def test_a_burst_of_concurrent_requests_gets_no_500(cluster: Cluster):
    async with httpx.AsyncClient(
        base_url=cluster.checker.gateway_url, timeout=60, limits=httpx.Limits(max_connections=100)
    ) as http:
        requests = []
        for i in range(300):
            match i % 5:
                case 0 | 1:
                    requests.append(http.post("/schedule", json=GOOD))
                case 2:
                    requests.append(
                        http.post(
                            "/schedule",
                            content=BAD_BODIES["wrong type"],
                            headers={"content-type": "application/json"},
                        )
                    )
                case 3:
                    requests.append(http.get(f"/messages/{i // 5}"))
                case _:
                    requests.append(http.get(f"/jobs/{BAD_OFFSETS[i % len(BAD_OFFSETS)]}"))
        answers = await asyncio.gather(*requests)
    statuses = Counter(a.status_code for a in answers)
    assert not [a for a in answers if a.status_code >= 500], statuses
    offsets = [
        a.json()["offset"] for a in answers if a.request.method == "POST" and a.status_code == 200
    ]
    assert len(offsets) == 120, statuses
    assert sorted(offsets) == list(range(120)), "offsets unique and gap-free"
