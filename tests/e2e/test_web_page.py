"""Following a job from a web page on another origin (issue 16), in Debian's headless chromium:
the README's "From a web page" example, served as is by a throwaway static server on a second
port, schedules a job on a real `jobcast serve` with the browser client (/client.js) and follows
it to done; with auth on (a key, then the read token), across a gateway restart, from an origin
JOBCAST_CORS_ORIGINS does not list, and with another job's read token."""

import functools
import json
import os
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, Request, expect

from harness.processes import JOBCAST, JobcastProcess
from tests.e2e.browser import Watched, chromium

ROOT = Path(__file__).parents[2]
SEEN = 20_000  # ms
DEFAULT_URL = "http://127.0.0.1:8000"
STEPS = ['0 result "result1"', '1 result "result2"', '2 result "result3"', '3 done "done"']
"""default_fn's replies as the README's page lists them."""

FOLLOW_PAGE = """<ol id="steps"></ol><p id="status"></p>
<script type="module">
  const query = new URLSearchParams(location.search);
  const { followJob } = await import(`${query.get("gateway")}/client.js`);
  const status = document.getElementById("status");
  try {
    const last = await followJob(query.get("offset"), { token: query.get("token"), onReply(reply) {
      const step = document.createElement("li");
      step.textContent = `${reply.seq} ${reply.kind}`;
      document.getElementById("steps").append(step);
    } });
    status.textContent = `ended: ${last.kind}`;
  } catch (error) { status.textContent = `${error.name} ${error.status}: ${error.message}`; }
</script>
"""
"""A page following the job its address names, showing the error it gets as text."""


def readme_page() -> str:
    """The README's "From a web page" example, exactly as written."""
    section = (ROOT / "README.md").read_text().split("## From a web page", 1)[1]
    return section.split("```html\n", 1)[1].split("```", 1)[0]


def page_for(gateway: JobcastProcess, key: str | None = None) -> str:
    """The README's page pointed at `gateway` (and given `key`): the two values a reader edits."""
    html = readme_page()
    assert DEFAULT_URL in html
    assert "key = undefined" in html
    html = html.replace(DEFAULT_URL, gateway.url)
    return html.replace("key = undefined", f"key = {json.dumps(key)}") if key else html


class _QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def static_site(root: Path) -> Iterator[str]:
    """A throwaway static file server for `root` on a port of its own: another origin."""
    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietFiles, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def watched(browser: Browser) -> Iterator[Watched]:
    context = browser.new_context()
    context.set_default_timeout(SEEN)
    yield Watched(context.new_page())
    context.close()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """The pages' folder and the origin serving it."""
    pages = tmp_path / "site"
    pages.mkdir()
    (pages / "follow.html").write_text(FOLLOW_PAGE)
    (pages / "favicon.ico").write_bytes(b"")  # NOTE: else the browser's 404 for it is an error
    with static_site(pages) as origin:
        yield pages, origin


def steps(page: Page) -> list[str]:
    return page.locator("#steps > li").all_text_contents()


def serve(spawn, jobcast_env: dict[str, str], origin: str, **extra: str) -> JobcastProcess:
    env = {**jobcast_env, "JOBCAST_CORS_ORIGINS": origin, **extra}
    gateway = spawn("serve", env, name=f"serve-{len(spawn.started)}")
    gateway.wait_http()
    return gateway


def add_key(env: dict[str, str], name: str) -> str:
    done = subprocess.run(
        [*JOBCAST, "keys", "add", name],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_readme_page_on_another_origin_follows_its_job_to_done_and_a_stranger_is_refused(
    spawn, jobcast_env, watched, site
):
    pages, origin = site
    gateway = serve(spawn, jobcast_env, origin)
    (pages / "index.html").write_text(page_for(gateway))
    page = watched.page
    page.goto(f"{origin}/index.html")
    expect(page.locator("#status")).to_have_text("job 0: done")
    assert steps(page) == STEPS
    assert watched.errors == [], watched.errors

    # The same page from an origin JOBCAST_CORS_ORIGINS does not list: the browser refuses the
    # gateway's answers, and the page is told why.
    with static_site(pages) as stranger:
        page.goto(f"{stranger}/index.html")
        expect(page.locator("#status")).to_contain_text(
            f"cannot schedule a job: the gateway at {gateway.url} answered, but not to "
            f"{stranger}: add it to JOBCAST_CORS_ORIGINS"
        )
        assert any(
            "blocked by CORS policy" in error and f"from origin '{stranger}'" in error
            for error in watched.errors
        ), watched.errors
        watched.errors.clear()
        # Following a job it did not schedule is refused alike (the stream, read by EventSource).
        page.goto(f"{stranger}/follow.html?gateway={gateway.url}&offset=0")
        expect(page.locator("#status")).to_contain_text(
            "JobcastError 0: jobcast: cannot follow job 0: the gateway at"
        )
        assert steps(page) == []
        assert any("blocked by CORS policy" in error for error in watched.errors), watched.errors
    assert httpx.get(f"{gateway.url}/jobs", timeout=10).json()["jobs"][0]["offset"] == 0
    assert len(httpx.get(f"{gateway.url}/jobs", timeout=10).json()["jobs"]) == 1


def test_with_auth_on_a_page_with_a_key_follows_with_its_read_token_and_no_other_job(
    spawn, jobcast_env, watched, site
):
    pages, origin = site
    env = {**jobcast_env, "JOBCAST_AUTH": "on"}
    alice = add_key(env, "alice")
    gateway = serve(spawn, env, origin, JOBCAST_AUTH="on")
    page = watched.page
    # The README's page as written (no key) is refused, and says so.
    (pages / "keyless.html").write_text(page_for(gateway))
    page.goto(f"{origin}/keyless.html")
    expect(page.locator("#status")).to_have_text(
        "jobcast: cannot schedule a job: 401 An API key is required (the API key or read token "
        "is missing, unknown or expired)"
    )
    assert steps(page) == []
    watched.errors.clear()  # the browser reports the 401 itself

    (pages / "index.html").write_text(page_for(gateway, alice))
    page.goto(f"{origin}/index.html")
    expect(page.locator("#status")).to_have_text("job 0: done")
    assert steps(page) == STEPS
    assert watched.errors == [], watched.errors
    # The key went in a header, never in an address.
    assert all(alice not in url for url in watched.requests), watched.requests

    # Job 0's read token does not read job 1: nothing shown, the refusal said on the page.
    answer = httpx.post(
        f"{gateway.url}/schedule",
        json={"deployment": "D", "framework": "F", "fn": "default_fn"},
        headers={"Authorization": f"Bearer {alice}"},
        timeout=10,
    ).json()
    first = httpx.post(
        f"{gateway.url}/tokens",
        json={"offsets": [0]},
        headers={"Authorization": f"Bearer {alice}"},
        timeout=10,
    ).json()["read_token"]
    page.goto(f"{origin}/follow.html?gateway={gateway.url}&offset={answer['offset']}&token={first}")
    expect(page.locator("#status")).to_contain_text(
        f"JobcastError 404: jobcast: cannot follow job {answer['offset']}: 404 Offset not found"
    )
    assert steps(page) == []
    # Its own token follows it.
    page.goto(
        f"{origin}/follow.html?gateway={gateway.url}&offset={answer['offset']}"
        f"&token={answer['read_token']}"
    )
    expect(page.locator("#status")).to_have_text("ended: done")
    assert steps(page) == ["0 result", "1 result", "2 result", "3 done"]


def test_the_page_resumes_across_a_gateway_restart_without_a_gap_or_a_repeat(
    spawn, jobcast_env, watched, site
):
    pages, origin = site
    slow = {"JOBCAST_STEP_SECONDS": "1.5", "JOBCAST_ACCESS_LOG": "true"}
    first = serve(spawn, jobcast_env, origin, **slow)
    (pages / "index.html").write_text(page_for(first))
    page = watched.page
    streams: list[Request] = []
    page.on("request", lambda request: "/stream" in request.url and streams.append(request))
    page.goto(f"{origin}/index.html")
    expect(page.locator("#steps > li")).to_have_count(1)

    assert first.terminate() == 0  # mid-job: the worker drains its step and hands the rest back
    before = len(streams)
    assert page.locator("#status").text_content() == ""
    again = serve(spawn, jobcast_env, origin, **slow)
    expect(page.locator("#status")).to_have_text("job 0: done")
    assert steps(page) == STEPS
    # The page did follow the new gateway (not a stream that outlived the restart).
    assert "/messages/0/stream" in again.log()
    # Each stream opened since (a refused connection sent nothing) resumed after the last reply
    # shown (Last-Event-ID), none from the start.
    resumed = [
        request.all_headers().get("last-event-id")
        for request in streams[before:]
        if request.response() is not None
    ]
    assert resumed, [request.url for request in streams]
    assert all(seq is not None and int(seq) >= 0 for seq in resumed), resumed
    assert not [e for e in watched.errors if "ERR_CONNECTION_REFUSED" not in e], watched.errors


STUB_PAGE = """<ol id="steps"></ol><p id="status"></p>
<script type="module">
  // Every EventSource the client opens, to check each is closed in the end.
  window.sources = [];
  window.EventSource = class extends EventSource {
    constructor(...args) { super(...args); window.sources.push(this); }
  };
  window.done = 0;
  window.ticks = [];
  const { followJob } = await import("http://gateway.test/client.js");
  const status = document.getElementById("status");
  for (const offset of [7, 8, 9, 10]) {
    try {
      const last = await followJob(offset, { token: "jcr_t", onDone: () => { window.done += 1; },
        onProgress: (tick) => window.ticks.push([tick.offset, tick.seq, tick.value.current]),
        onReply(reply) {
          const step = document.createElement("li");
          step.textContent = `${reply.offset} ${reply.seq} ${reply.kind}`;
          document.getElementById("steps").append(step);
        } });
      status.textContent += `${offset} ended: ${last.kind}. `;
    } catch (error) {
      status.textContent += `${offset} ${error.name} ${error.status}: ${error.message}. `;
    }
  }
</script>
"""


def _event(offset: int, seq: int, kind: str, *, with_id: bool = True, value: object = None) -> str:
    data = json.dumps(
        {"offset": offset, "seq": seq, "kind": kind, "value": value, "produced_at": ""}
    )
    return (f"id: {seq}\n" if with_id else "") + f"event: {kind}\ndata: {data}\n\n"


def test_the_client_drops_repeats_resumes_after_the_last_seq_and_says_why_it_stops(watched):
    """The client against a stand-in gateway (no jobcast): a stream that drops, repeats a
    reply and a stale progress tick, sends one after the final; one answered 503 once; one
    refused 401, one 403."""
    tick = {"current": 40, "total": 100, "message": "resizing"}
    page = watched.page
    asked: list[str] = []
    streams = {
        # job 7: dropped after seq 1; resumed, the gateway repeats seq 1 and step 1's tick, and
        # sends a reply after the final one: none of them is shown
        "7": [
            "retry: 50\n\n"
            + _event(7, 0, "result")
            + _event(7, 1, "progress", with_id=False, value=tick)
            + _event(7, 1, "result"),
            _event(7, 1, "progress", with_id=False, value=tick)
            + _event(7, 1, "result")
            + _event(7, 2, "progress", with_id=False, value={**tick, "current": 60})
            + _event(7, 2, "result")
            + _event(7, 3, "done")
            + _event(7, 4, "result"),
        ],
        # job 8: answered 503 once (the browser gives up on an error status: opened again)
        "8": [503, 503, _event(8, 0, "error")],
        # job 9: the token is refused; job 10: its owner's key was revoked
        "9": [401, 401],
        "10": [403, 403],
    }
    cors = {"access-control-allow-origin": "http://page.test"}

    def stream(route):
        request = route.request
        offset = request.url.split("/messages/", 1)[1].split("/", 1)[0]
        # NOTE: an intercepted request does not show the Last-Event-ID the browser adds on a
        # reconnect (the restart test sees it on the wire): the repeat below stands for a
        # gateway that ignores it.
        asked.append(request.url)
        answer = streams[offset].pop(0)
        if isinstance(answer, int):
            detail = {
                401: "Invalid or expired read token",
                403: "API key revoked",
                503: "ledger unavailable",
            }[answer]
            route.fulfill(status=answer, json={"detail": detail}, headers=cors)
        else:
            route.fulfill(body=answer, content_type="text/event-stream", headers=cors)

    client = (ROOT / "jobcast" / "webclient" / "client.js").read_text()
    page.route(
        "http://gateway.test/client.js",
        lambda route: route.fulfill(
            body=client,
            content_type="text/javascript",
            headers={"access-control-allow-origin": "*"},
        ),
    )
    page.route("http://gateway.test/messages/*/stream*", stream)
    page.route(
        "http://page.test/", lambda route: route.fulfill(body=STUB_PAGE, content_type="text/html")
    )
    page.route("http://page.test/favicon.ico", lambda route: route.fulfill(body=b""))
    page.goto("http://page.test/")

    expect(page.locator("#status")).to_contain_text("10 JobcastError")
    assert steps(page) == ["7 0 result", "7 1 result", "7 2 result", "7 3 done", "8 0 error"]
    assert page.locator("#status").text_content() == (
        "7 ended: done. 8 ended: error. 9 JobcastError 401: jobcast: cannot follow job 9: 401 "
        "Invalid or expired read token (the API key or read token is missing, unknown or "
        "expired). 10 JobcastError 403: jobcast: cannot follow job 10: 403 API key revoked (the "
        "API key or read token may not do this: a read token only reads its own jobs, a revoked "
        "key nothing). "
    )
    assert page.evaluate("window.done") == 2
    assert page.evaluate("window.ticks") == [[7, 1, 40], [7, 2, 60]]
    assert page.evaluate("window.sources.map(s => s.readyState)") == [2, 2, 2, 2, 2]
    base = "http://gateway.test/messages"
    assert asked == [
        f"{base}/7/stream?token=jcr_t",
        f"{base}/7/stream?token=jcr_t",  # the browser's own reconnect, after the drop
        f"{base}/8/stream?token=jcr_t",
        f"{base}/8/stream?token=jcr_t",  # the client asking why the browser gave up
        f"{base}/8/stream?token=jcr_t",  # opened again
        f"{base}/9/stream?token=jcr_t",
        f"{base}/9/stream?token=jcr_t",
        f"{base}/10/stream?token=jcr_t",
        f"{base}/10/stream?token=jcr_t",
    ]
