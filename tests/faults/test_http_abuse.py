"""Scenario 9: bad HTTP input gets a clear 4xx, never a 500 or a stack trace, also in a burst."""

import asyncio
from collections import Counter

import httpx
import orjson
import pytest

from tests.conftest import Spawner
from tests.faults.conftest import Cluster
from tests.support.processes import JobcastProcess

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


# Input no ledger can store, and answers that must stay small, on real gateways (both ledgers)

SMALL_ANSWER = 2048
UNSTORABLE_BODIES = {
    "lone surrogate": b'{"deployment": "\\ud800", "framework": "FastAPI", "fn": "counted"}',
    "surrogate as a key": b'{"deployment": "D", "framework": "F", "fn": "c", "\\udfff": 1}',
    "NUL": b'{"deployment": "Doc\\u0000ker", "framework": "FastAPI", "fn": "counted"}',
    "control character": b'{"deployment": "Docker", "framework": "Fast\\u001bAPI", "fn": "c"}',
    "C1 control character": b'{"deployment": "Docker", "framework": "F", "fn": "c\\u0085"}',
}
NOT_AN_OFFSET = ["1.0", "+1", "1_000", "%201", "1%20", "%EF%BC%91", "%C2%B2"]  # 1, ¹ (fullwidth, ²)


@pytest.fixture
def gateway(spawn: Spawner, jobcast_env: dict[str, str], database_url: str) -> JobcastProcess:
    """A real gateway on each ledger in turn (SQLite, PostgreSQL), ready."""
    process = spawn("gateway", {**jobcast_env, "JOBCAST_DATABASE_URL": database_url})
    process.wait_http("/ready")
    return process


async def test_text_no_ledger_can_store_is_a_422_never_a_500(gateway: JobcastProcess):
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
        for name, body in UNSTORABLE_BODIES.items():
            answer = await http.post(
                "/schedule", content=body, headers={"content-type": "application/json"}
            )
            _assert_clear(answer, 422)
            assert len(answer.content) < SMALL_ANSWER, name
        nul = await http.post(
            "/schedule",
            content=UNSTORABLE_BODIES["NUL"],
            headers={"content-type": "application/json"},
        )
        assert "U+0000" in nul.text
        # raw bytes: clients refuse to send control characters in a header themselves; the
        # HTTP parser refuses C0 controls and DEL (400), the contract the rest (422)
        keys = {b"k" * 201: 422, b"key\x85": 422, b"": 422, b"key\x01": 400, b"key\x7f": 400}
        for key, status in keys.items():
            answer = await _raw_post(gateway.port, b"Idempotency-Key: " + key)
            assert answer[0] == status, (key, answer)
        # nothing above was scheduled, and the gateway says so without a traceback
        first = await http.post("/schedule", json=GOOD)
        assert first.json() == {"offset": 0}
    assert "Traceback" not in gateway.log()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_422_is_small_whatever_the_input(gateway: JobcastProcess):
    big = "x" * 60_000
    bodies = {
        "long string": {**GOOD, "deployment": big},
        "long key": {**GOOD, big: 1},
        "long list": {**GOOD, "fn": [big]},
        "wrong top level": [big],
    }
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
        for name, body in bodies.items():
            answer = await http.post("/schedule", json=body)
            _assert_clear(answer, 422)
            assert len(answer.content) < SMALL_ANSWER, (name, len(answer.content))
        long_string = (await http.post("/schedule", json=bodies["long string"])).json()
        assert long_string["detail"][0]["loc"] == ["body", "deployment"]
        assert long_string["detail"][0]["input"] == "x" * 64 + "…"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_an_offset_is_plain_decimal_digits(gateway: JobcastProcess):
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
        offset = (await http.post("/schedule", json=GOOD)).json()["offset"]
        assert offset == 0
        for path in ("/messages/{}", "/jobs/{}", "/messages/{}/stream"):
            for bad in NOT_AN_OFFSET:
                _assert_clear(await http.get(path.format(bad)), 422)
        for path in ("/messages/{}", "/jobs/{}"):  # the job is queued: its stream would stay open
            for good in ("0", "00"):
                assert (await http.get(path.format(good))).status_code == 200


async def _raw_post(port: int, header: bytes) -> tuple[int, str]:
    """POST /schedule with a good body and `header` as sent, byte for byte: (status, body)."""
    body = orjson.dumps(GOOD)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            b"POST /schedule HTTP/1.1\r\nHost: jobcast\r\nConnection: close\r\n"
            b"Content-Type: application/json\r\n%s\r\nContent-Length: %d\r\n\r\n%s"
            % (header, len(body), body)
        )
        answer = await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()
    head, _, text = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), text.decode(errors="replace")
