"""JOBCAST_CORS_ORIGINS on the gateway's app, without a browser: what a preflight and an answer
carry for a listed origin, an unlisted or hostile one, `*`, and CORS off; the setting's checks at
start; and the browser client's files (the browser tests run them: tests/e2e/test_web_page.py)."""

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import httpx
import pytest
from faststream.rabbit import TestRabbitBroker
from pydantic import ValidationError
from typer.testing import CliRunner

from jobcast.cli import app as cli
from jobcast.gateway import create_app
from jobcast.settings import Settings

PAGE = "https://app.example.com"
OTHER = "http://localhost:5173"
Gateway = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def gateway(tmp_path: Path) -> Gateway:
    """A gateway app with these settings (no broker: TestRabbitBroker), its ledger open."""

    @asynccontextmanager
    async def started(**settings: object) -> AsyncIterator[httpx.AsyncClient]:
        app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'l.db'}", **settings))
        async with TestRabbitBroker(app.state.broker):
            await app.state.ledger.open()
            transport = httpx.ASGITransport(app=app)
            try:
                async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
                    yield http
            finally:
                await app.state.ledger.close()

    return started


def preflight(origin: str, method: str = "GET", headers: str | None = None) -> dict[str, str]:
    asked = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers is not None:
        asked["Access-Control-Request-Headers"] = headers
    return asked


@pytest.mark.parametrize(
    ("path", "method", "headers"),
    [
        ("/schedule", "POST", "authorization, content-type, idempotency-key"),
        ("/messages/0", "GET", "authorization"),
        ("/messages/0/stream", "GET", "last-event-id, authorization"),
        ("/jobs/0", "GET", "authorization"),
        ("/jobs/0", "DELETE", "authorization"),
        ("/jobs/0/cancel", "POST", "authorization"),
        ("/tokens", "POST", "authorization, content-type"),
        ("/schedule/batch", "POST", "content-type"),
    ],
)
async def test_a_listed_origin_s_preflight_is_allowed_before_any_key_is_asked(
    gateway, path, method, headers
):
    async with gateway(cors_origins=[OTHER, PAGE], auth="on") as http:
        answer = await http.options(path, headers=preflight(PAGE, method, headers))
    assert answer.status_code == 200, answer.text
    assert answer.headers["access-control-allow-origin"] == PAGE
    assert method in answer.headers["access-control-allow-methods"]
    allowed = answer.headers["access-control-allow-headers"].lower()
    for name in ("authorization", "content-type", "idempotency-key", "last-event-id"):
        assert name in allowed
    assert "access-control-allow-credentials" not in answer.headers
    assert "Origin" in answer.headers["vary"]


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "null",  # a sandboxed frame or a file:// page
        PAGE + ".evil.example",
        "https://evil.example/" + PAGE,
        PAGE + "/",
        PAGE + ":443",
        PAGE.upper(),
        "http://app.example.com",  # the same host over http
        PAGE + "\r\nAccess-Control-Allow-Origin: *",
        "*",
        "",
        PAGE + " " + PAGE,
        PAGE + "," + PAGE,
    ],
)
async def test_an_unlisted_or_hostile_origin_is_refused_and_never_echoed(gateway, origin):
    async with gateway(cors_origins=[PAGE]) as http:
        refused = await http.options("/schedule", headers=preflight(origin, "POST"))
        answered = await http.get("/health", headers={"Origin": origin})
    assert refused.status_code == 400
    assert "Disallowed CORS origin" in refused.text
    assert answered.status_code == 200
    for answer in (refused, answered):
        assert "access-control-allow-origin" not in answer.headers
        assert "access-control-allow-credentials" not in answer.headers


@pytest.mark.parametrize(
    ("method", "headers", "why"),
    [
        ("PUT", None, "method"),
        ("PATCH", "authorization", "method"),
        ("TRACE", None, "method"),
        ("POST", "authorization, x-forwarded-for", "headers"),
        ("GET", "cookie", "headers"),
    ],
)
async def test_a_preflight_for_a_method_or_header_not_allowed_is_refused(
    gateway, method, headers, why
):
    async with gateway(cors_origins=[PAGE]) as http:
        answer = await http.options("/schedule", headers=preflight(PAGE, method, headers))
    assert answer.status_code == 400
    assert answer.text == f"Disallowed CORS {why}"


async def test_every_answer_to_a_listed_origin_is_readable_errors_included(gateway):
    origin = {"Origin": PAGE}
    async with gateway(cors_origins=[PAGE], auth="on", max_body_bytes=64) as http:
        unauthorized = await http.get("/jobs/0", headers=origin)
        too_large = await http.post("/schedule", content=b"{" + b" " * 100 + b"}", headers=origin)
        bad_token = await http.get("/messages/0/stream?token=jcr_x.y", headers=origin)
    assert unauthorized.status_code == 401
    assert bad_token.status_code == 401
    assert too_large.status_code == 413
    for answer in (unauthorized, too_large, bad_token):
        assert answer.headers["access-control-allow-origin"] == PAGE
        assert "WWW-Authenticate" in answer.headers["access-control-expose-headers"]
        assert "Retry-After" in answer.headers["access-control-expose-headers"]
    async with gateway(cors_origins=[PAGE]) as http:
        missing = await http.get("/jobs/12345", headers=origin)
        invalid = await http.post("/schedule", json={"fn": "<b>"}, headers=origin)
    assert missing.status_code == 404
    assert invalid.status_code == 422
    assert missing.headers["access-control-allow-origin"] == PAGE
    assert invalid.headers["access-control-allow-origin"] == PAGE


async def test_any_origin_with_auth_off_never_allows_credentials(gateway):
    async with gateway(cors_origins=["*"]) as http:
        asked = await http.options(
            "/schedule", headers=preflight("https://anyone.example", "POST", "content-type")
        )
        # A cookie does not turn `*` into an echo of the origin with credentials.
        answered = await http.get(
            "/health", headers={"Origin": "https://anyone.example", "Cookie": "session=1"}
        )
    assert asked.status_code == 200
    for answer in (asked, answered):
        assert answer.headers["access-control-allow-origin"] == "*"
        assert "access-control-allow-credentials" not in answer.headers


async def test_cors_is_off_by_default(gateway):
    async with gateway() as http:
        asked = await http.options("/schedule", headers=preflight(PAGE, "POST", "content-type"))
        answered = await http.get("/health", headers={"Origin": PAGE})
    assert asked.status_code == 405  # no route answers OPTIONS: the browser refuses
    assert "access-control-allow-origin" not in asked.headers
    assert "access-control-allow-origin" not in answered.headers


def test_any_origin_with_auth_on_is_refused_at_start():
    with pytest.raises(ValidationError, match=r"JOBCAST_CORS_ORIGINS=\* .* refused with"):
        Settings(cors_origins="*", auth="on")
    assert Settings(cors_origins="*").cors_origins == ["*"]
    assert Settings(cors_origins=f" {PAGE}, {OTHER},{PAGE}", auth="on").cors_origins == [
        PAGE,
        OTHER,
    ]


def test_the_commands_refuse_to_start_saying_which_setting_and_no_secret(monkeypatch):
    monkeypatch.setenv("JOBCAST_CORS_ORIGINS", "*")
    monkeypatch.setenv("JOBCAST_AUTH", "on")
    monkeypatch.setenv("JOBCAST_AMQP_URL", "amqp://jobcast:hunter2-password@broker/")
    monkeypatch.setenv("JOBCAST_SIGNING_KEY", "s3cret-signing-key")
    for command in ("gateway", "serve", "worker"):
        run = CliRunner().invoke(cli, [command])
        assert run.exit_code == 1, run.output
        assert "settings refused" in run.output
        assert "JOBCAST_CORS_ORIGINS=* (any web page) is refused with JOBCAST_AUTH=on" in (
            run.output
        )
        assert "hunter2" not in run.output
        assert "s3cret" not in run.output


@pytest.mark.parametrize(
    ("value", "says"),
    [
        (f"*,{PAGE}", "`*` (any page) stands alone"),
        (PAGE + "/", f"write '{PAGE}'"),
        (PAGE + "/app", f"write '{PAGE}'"),
        (PAGE + "?x=1", f"write '{PAGE}'"),
        (PAGE + ":443", f"write '{PAGE}'"),
        ("https://App.Example.com", f"write '{PAGE}'"),
        ("https://*.example.com", "has a wildcard"),
        ("null", "is not an http:// or https:// origin"),
        ("file://", "is not an http:// or https:// origin"),
        ("javascript:alert(1)", "is not an http:// or https:// origin"),
        ("app.example.com", "is not an http:// or https:// origin"),
        ("https://user:pw@app.example.com", "has a user name"),
        ("https://app.example.com:99999", "is not an origin"),
        ("https://bücher.example", "punycode"),
        ("https://app example.com", "no valid host name"),
        ("https://-app.example.com", "no valid host name"),
        ("https://app.\texample.com", "has a control character"),
        ("https://app.example.com\r\nX: y", "has a control character"),
    ],
)
def test_an_origin_no_browser_sends_is_refused_saying_how_to_write_it(value, says):
    with pytest.raises(ValidationError) as refused:
        Settings(cors_origins=value)
    assert says in str(refused.value)


async def test_the_browser_client_is_served_cacheable_to_any_page_without_a_key(gateway):
    async with gateway(auth="on", cors_origins=[PAGE]) as http:
        script = await http.get("/client.js")
        types = await http.get("/client.d.ts")
        listed = await http.get("/client.js", headers={"Origin": PAGE})
        again = await http.get("/client.js", headers={"If-None-Match": script.headers["etag"]})
        stale = await http.get("/client.js", headers={"If-None-Match": '"not-this-one"'})
    assert script.status_code == types.status_code == 200
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    assert types.headers["content-type"] == "application/typescript; charset=utf-8"
    assert "export function followJob(" in script.text
    assert "export function schedule(" in types.text
    assert script.headers["cache-control"] == "public, max-age=3600"
    assert script.headers["x-content-type-options"] == "nosniff"
    assert script.headers["access-control-allow-origin"] == "*"
    assert script.headers["etag"] != types.headers["etag"]
    assert listed.headers["access-control-allow-origin"] == PAGE
    assert again.status_code == 304
    assert again.content == b""
    assert stale.status_code == 200
    assert stale.content == script.content
