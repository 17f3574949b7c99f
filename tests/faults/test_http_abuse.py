"""Scenario 9: bad HTTP input gets a clear 4xx, never a 500 or a stack trace, also in a burst."""

import asyncio
import contextlib
import time
from collections import Counter

import httpx
import orjson
import pytest

from harness.processes import JobcastProcess
from tests.conftest import Spawner
from tests.faults.conftest import Cluster
from tests.support.waiting import eventually

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


# Connections and request heads: bounded in size, in time and in number (real processes)

HEADER_TIMEOUT = 2.0
HEAD_LIMIT = 16384  # JOBCAST_HTTP_MAX_HEADER_BYTES default
CONNECTION_LIMIT = 20
PARTIAL_HEAD = b"GET /health HTTP/1.1\r\nHost: jobcast\r\n"


def _limited(spawn: Spawner, env: dict[str, str], command: str, **limits: str) -> JobcastProcess:
    """`jobcast <command>` with HTTP limits from `limits` (JOBCAST_HTTP_<NAME>), ready."""
    settings = {f"JOBCAST_HTTP_{name.upper()}": value for name, value in limits.items()}
    process = spawn(command, {**env, **settings})
    process.wait_http("/health" if command == "worker" else "/ready")
    return process


@pytest.fixture(params=["gateway", "worker"])
def impatient(request, spawn: Spawner, jobcast_env: dict[str, str]) -> JobcastProcess:
    """A gateway, or a worker's ops port, that waits HEADER_TIMEOUT for a request head."""
    env = jobcast_env
    if request.param == "worker":  # its ops server answers on JOBCAST_PORT, as a gateway would
        env = {**jobcast_env, "JOBCAST_WORKER_PORT": jobcast_env["JOBCAST_PORT"]}
    return _limited(spawn, env, request.param, header_timeout_seconds=str(HEADER_TIMEOUT))


async def _open(port: int, first: bytes = b"") -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    if first:
        writer.write(first)
        # NOTE: a server that refuses the head may close before it has read all of it; what
        # it answered is still there to read.
        with contextlib.suppress(ConnectionError):
            await writer.drain()
    return reader, writer


async def _closed_by_server(reader: asyncio.StreamReader, within: float) -> bytes:
    """What the server sent before it closed the connection; AssertionError if it did not."""
    try:
        return await asyncio.wait_for(reader.read(), within)
    except ConnectionResetError:
        return b""
    except TimeoutError:
        raise AssertionError(f"the server kept the connection open for {within}s") from None


async def _get_health(port: int) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as http:  # a connection of its own
        return await http.get(f"http://127.0.0.1:{port}/health")


async def test_connections_that_never_finish_their_head_are_closed(impatient: JobcastProcess):
    port = impatient.port
    silent = [await _open(port) for _ in range(5)]
    partial = [await _open(port, PARTIAL_HEAD + b"X-Slow: ") for _ in range(5)]
    opened = time.monotonic()

    async def trickle(writer: asyncio.StreamWriter) -> None:
        """Slowloris: one more header byte every 0.2 s, never the end of the head."""
        for _ in range(int(HEADER_TIMEOUT * 3 / 0.2)):
            if writer.is_closing():
                return
            with contextlib.suppress(ConnectionError):
                writer.write(b"a")
            await asyncio.sleep(0.2)

    trickling = [asyncio.create_task(trickle(writer)) for _, writer in partial]
    try:
        assert (await _get_health(port)).status_code == 200  # meanwhile, others are served
        for reader, _ in silent + partial:
            assert await _closed_by_server(reader, within=HEADER_TIMEOUT * 3) == b""
        assert time.monotonic() - opened >= HEADER_TIMEOUT * 0.9
    finally:
        for task in trickling:
            task.cancel()
        for _, writer in silent + partial:
            writer.close()
    assert (await _get_health(port)).status_code == 200
    assert "Traceback" not in impatient.log()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_head_over_the_limit_is_refused_and_the_gateway_keeps_answering(gateway):
    port = gateway.port
    heads = {
        "one header just over the limit": PARTIAL_HEAD
        + b"X-Big: "
        + b"a" * HEAD_LIMIT
        + b"\r\n\r\n",
        "many small headers": PARTIAL_HEAD + b"X-Many: aaaaaaaaaa\r\n" * 1000 + b"\r\n",
        "a long URL": b"GET /health?" + b"q" * HEAD_LIMIT + b" HTTP/1.1\r\nHost: jobcast\r\n\r\n",
    }
    for name, head in heads.items():
        reader, writer = await _open(port, head)
        answer = await _closed_by_server(reader, within=10)
        writer.close()
        assert answer.startswith(b"HTTP/1.1 431 "), (name, answer[:200])
        assert b"connection: close" in answer.lower(), name
        assert str(HEAD_LIMIT).encode() in answer, name

    # 16 MiB of one header value, sent as fast as the gateway takes it: it stops taking it
    reader, writer = await _open(port, PARTIAL_HEAD + b"X-Huge: ")
    sent = 0
    with contextlib.suppress(ConnectionError):
        while sent < 16 * 1024 * 1024:
            writer.write(b"a" * 65536)
            await asyncio.wait_for(writer.drain(), timeout=10)
            sent += 65536
    answer = await _closed_by_server(reader, within=10)
    writer.close()
    assert sent < 16 * 1024 * 1024, "the gateway read all of a 16 MiB header"
    assert answer == b"" or answer.startswith(b"HTTP/1.1 431 "), answer[:200]

    assert (await _get_health(port)).status_code == 200
    assert "Traceback" not in gateway.log()


async def test_over_the_connection_limit_a_request_gets_a_clear_503(spawn, jobcast_env):
    gateway = _limited(spawn, jobcast_env, "gateway", max_connections=str(CONNECTION_LIMIT))
    idle = [await _open(gateway.port) for _ in range(CONNECTION_LIMIT)]
    try:

        async def one_more() -> httpx.Response:
            return await _get_health(gateway.port)

        refused = await eventually(one_more, until=lambda a: a.status_code == 503, timeout=10)
        assert refused.headers["connection"] == "close"
        assert refused.headers["retry-after"] == "1"
        assert "too many" in refused.json()["detail"]
    finally:
        for _, writer in idle:
            writer.close()
    # once they are gone, the gateway answers again
    await eventually(one_more, until=lambda a: a.status_code == 200, timeout=10)
