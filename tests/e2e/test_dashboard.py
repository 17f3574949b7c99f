"""The dashboard in a real headless browser (Debian's chromium) against a real `jobcast serve`
with test pipelines: what a person opening http://127.0.0.1:8000/ sees and does."""

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from harness.processes import JobcastProcess
from tests.e2e.browser import Watched, chromium
from tests.e2e.dashboard_pipelines import HOSTILE_MARKUP, HOSTILE_VALUE

ROOT = Path(__file__).parents[2]
SEEN = 20_000  # ms: how long a step may take to show up on the page
expect.set_options(timeout=SEEN)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def gateway_env(jobcast_env) -> dict[str, str]:
    """`jobcast serve` with the dashboard's test pipelines, steps of 0.4 s."""
    return {
        **jobcast_env,
        "JOBCAST_PIPELINES": "tests.e2e.dashboard_pipelines",
        "JOBCAST_STEP_SECONDS": "0.4",
    }


@pytest.fixture
def gateway(spawn, gateway_env) -> JobcastProcess:
    process = spawn("serve", gateway_env, name="serve")
    process.wait_http()
    return process


@pytest.fixture
def watched(browser: Browser) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(SEEN)
    yield Watched(context.new_page())
    context.close()


def schedule(gateway: JobcastProcess, fn: str, tags: list[str] | None = None) -> int:
    body: dict[str, object] = {"deployment": "Docker", "framework": "FastAPI", "fn": fn}
    if tags:
        body["tags"] = tags
    answer = httpx.post(f"{gateway.url}/schedule", json=body, timeout=10)
    answer.raise_for_status()
    return int(answer.json()["offset"])


def steps_of(page: Page) -> list[tuple[str, str]]:
    """(seq, kind) of each timeline entry, in the order shown."""
    return [
        tuple(pair)
        for pair in page.locator("#timeline > li").evaluate_all(
            "items => items.map(i => [i.dataset.seq, i.dataset.kind])"
        )
    ]


def clean(watched: Watched) -> None:
    assert watched.errors == [], watched.errors
    assert watched.dialogs == [], watched.dialogs


def test_the_page_loads_with_a_strict_policy_and_no_console_errors(gateway, watched):
    answer = httpx.get(gateway.url + "/", timeout=10)
    policy = answer.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert "unsafe-eval" not in policy

    page = watched.page
    page.goto(gateway.url + "/")
    expect(page.locator("#schedule-form select[name=fn] option")).to_have_text(
        ["default_fn", "fails", "hostile", "reports", "steady"]
    )
    expect(page.locator("[data-figure=workers] dd")).to_have_text("1")
    expect(page.locator("#chart svg rect.bar")).not_to_have_count(0)
    expect(page.locator("#live")).to_have_text("● live")
    clean(watched)
    # NOTE: nothing from another origin: the page works offline.
    assert all(url.startswith(gateway.url) for url in watched.requests), watched.requests


def test_the_form_schedules_a_job_and_its_steps_stream_in_in_order_then_done(gateway, watched):
    page = watched.page
    page.goto(gateway.url + "/#/schedule")
    # NOTE: with the keyboard only: the address focused the form's first field.
    page.keyboard.press("Control+A")
    page.keyboard.type("Kubernetes")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    page.locator("select[name=fn]").select_option("steady")
    page.locator("input[name=tags]").fill("nightly, team:data")
    page.keyboard.press("Enter")

    expect(page).to_have_url(f"{gateway.url}/#/jobs/0")
    expect(page.locator("#job-title")).to_have_text("Job #0")
    # The first step shows while the job still runs: the timeline grows live.
    expect(page.locator("#timeline > li[data-seq='0']")).to_be_visible()
    assert page.locator("#timeline > li[data-kind=done]").count() == 0
    expect(page.locator("#job-outcome")).to_have_attribute("data-state", "running")
    expect(page.locator("#job-outcome")).to_have_attribute("data-state", "done")
    expect(page.locator("#job-outcome")).to_contain_text("done")
    assert steps_of(page) == [("0", "result"), ("1", "result"), ("2", "result"), ("3", "done")]
    expect(page.locator("#job-request")).to_contain_text("Kubernetes")
    expect(page.locator("#job-request")).to_contain_text("nightly, team:data")
    # The long value is folded, and opens.
    folded = page.locator("#timeline > li[data-seq='1'] details")
    expect(folded.locator("pre")).not_to_be_visible()
    folded.locator("summary").click()
    expect(folded.locator("pre")).to_contain_text('"name": "row 39"')
    clean(watched)


def test_a_running_step_shows_its_progress_until_its_result(gateway, watched, tmp_path):
    release = tmp_path / "release"
    answer = httpx.post(
        f"{gateway.url}/schedule",
        json={"deployment": str(release), "framework": "FastAPI", "fn": "reports"},
        timeout=10,
    )
    page = watched.page
    page.goto(f"{gateway.url}/#/jobs/{answer.json()['offset']}")

    progress = page.locator("#job-progress")
    expect(progress).to_have_text("Step 1 running · 40 of 100 · resizing")
    expect(progress.locator("progress")).to_have_attribute("value", "40")
    expect(page.locator("#job-outcome")).to_contain_text("▶ running")
    release.touch()
    expect(page.locator("#job-outcome")).to_have_attribute("data-state", "done")
    expect(progress).to_be_hidden()
    assert steps_of(page) == [("0", "result"), ("1", "done")]
    clean(watched)


def test_a_failing_job_shows_failed_with_its_reason_at_its_shared_link(gateway, watched):
    offset = schedule(gateway, "fails")
    page = watched.page
    page.goto(f"{gateway.url}/#/jobs/{offset}")

    outcome = page.locator("#job-outcome")
    expect(outcome).to_have_attribute("data-state", "failed")
    expect(outcome).to_contain_text("failed")
    expect(outcome).to_contain_text("the disk is on fire")
    assert steps_of(page) == [("0", "result"), ("1", "error")]
    clean(watched)


WATCH_ROWS = """() => {
  window.seen = {};
  const rows = document.getElementById("job-rows");
  new MutationObserver(() => {
    for (const tr of rows.querySelectorAll("tr")) {
      const now = `${tr.dataset.state} ${tr.querySelector("td.steps").textContent}`;
      const seen = (window.seen[tr.dataset.offset] ??= []);
      if (seen.at(-1) !== now) seen.push(now);
    }
  }).observe(rows, { subtree: true, childList: true, attributes: true, characterData: true });
}"""
"""Records every (state, steps) each row of the list shows, in order (test code, run by the
driver: the page's policy does not apply to it)."""


def test_the_list_updates_live_while_jobs_run(gateway, watched):
    page = watched.page
    page.goto(gateway.url + "/")
    expect(page.locator("#live")).to_have_text("● live")
    page.evaluate(WATCH_ROWS)

    offsets = [schedule(gateway, "steady", ["live"]) for _ in range(3)]
    for offset in offsets:
        row = page.locator(f"#job-rows tr[data-offset='{offset}']")
        expect(row).to_have_attribute("data-state", "done")
        expect(row.locator("td.steps")).to_have_text("3")
        expect(row).to_contain_text("✓ done")
        expect(row.locator("td.took")).not_to_contain_text("so far")
    seen = page.evaluate("window.seen")
    for offset in offsets:
        shown = seen[str(offset)]
        # Each row appeared while its job ran and grew step by step to done, on this page.
        assert shown[0].startswith("running "), shown
        assert shown[-1] == "done 3", shown
        steps = [int(state.split()[1]) for state in shown]
        assert steps == sorted(steps), shown
        assert len(set(steps)) >= 2, shown
    clean(watched)


def test_a_job_with_no_reply_yet_shows_in_the_list_too(gateway, watched):
    page = watched.page
    page.goto(gateway.url + "/")
    expect(page.locator("[data-figure=workers] dd")).to_have_text("1")
    answer = httpx.post(
        f"{gateway.url}/schedule",
        json={"deployment": "D", "framework": "F", "fn": "steady", "delay_seconds": 600},
        timeout=10,
    )
    row = page.locator(f"#job-rows tr[data-offset='{answer.json()['offset']}']")
    # No reply comes for ten minutes: the fleet's figures tell the list there is a new job.
    expect(row).to_have_attribute("data-state", "scheduled")
    expect(row).to_contain_text("◷ scheduled")
    clean(watched)


def test_a_job_is_cancelled_from_its_view(gateway, watched):
    answer = httpx.post(
        f"{gateway.url}/schedule",
        json={"deployment": "D", "framework": "F", "fn": "steady", "delay_seconds": 600},
        timeout=10,
    )
    page = watched.page
    page.goto(f"{gateway.url}/#/jobs/{answer.json()['offset']}")
    expect(page.locator("#job-outcome")).to_have_attribute("data-state", "scheduled")
    page.locator("#job-cancel").focus()
    page.keyboard.press("Enter")

    expect(page.locator("#job-outcome")).to_have_attribute("data-state", "cancelled")
    expect(page.locator("#job-outcome")).to_contain_text("⊘ cancelled")
    expect(page.locator("#job-cancel")).to_be_hidden()
    assert steps_of(page) == [("0", "cancelled")]
    clean(watched)


def test_the_list_filters_by_state_and_tag(gateway, watched):
    done = schedule(gateway, "steady", ["blue"])
    failed = schedule(gateway, "fails", ["red"])
    other = schedule(gateway, "steady", ["red"])
    page = watched.page
    page.goto(gateway.url + "/")
    for offset, state in ((done, "done"), (failed, "failed"), (other, "done")):
        expect(page.locator(f"#job-rows tr[data-offset='{offset}']")).to_have_attribute(
            "data-state", state
        )

    # A failed job's reply is an SSE event named `error`: the feed is still live after it.
    expect(page.locator("#live")).to_have_text("● live")
    page.locator("#filters select[name=state]").select_option("failed")
    expect(page.locator("#job-rows tr")).to_have_count(1)
    expect(page.locator("#job-rows tr")).to_have_attribute("data-offset", str(failed))
    expect(page.locator("#job-rows tr")).to_contain_text("the disk is on fire")

    page.locator("#filters select[name=state]").select_option("")
    page.locator("#filters input[name=tag]").fill("red")
    expect(page.locator("#job-rows tr")).to_have_count(2)
    shown = page.locator("#job-rows tr").evaluate_all("rows => rows.map(r => r.dataset.offset)")
    assert shown == [str(other), str(failed)]  # newest first

    page.locator("#filters select[name=state]").select_option("done")
    expect(page.locator("#job-rows tr")).to_have_count(1)
    expect(page.locator("#job-rows tr")).to_have_attribute("data-offset", str(other))
    clean(watched)


def test_the_page_follows_a_gateway_restart(spawn, gateway_env, watched):
    first = spawn("serve", gateway_env, name="serve")
    first.wait_http()
    page = watched.page
    page.goto(first.url + "/")
    expect(page.locator("#live")).to_have_text("● live")

    assert first.terminate() == 0
    expect(page.locator("#live")).to_have_text("○ reconnecting…")
    second = spawn("serve", gateway_env, name="serve-again")
    second.wait_http()
    expect(page.locator("#live")).to_have_text("● live")
    offset = schedule(second, "steady")
    expect(page.locator(f"#job-rows tr[data-offset='{offset}']")).to_have_attribute(
        "data-state", "done"
    )
    # While it was down the browser reported the refused connections; the page's own code
    # raised nothing.
    assert not [error for error in watched.errors if "Failed to load resource" not in error], (
        watched.errors
    )
    assert watched.dialogs == []


def test_streams_answered_with_an_error_status_are_opened_again(gateway, watched):
    page = watched.page
    refused: list[str] = []

    def once_unavailable(route):
        # NOTE: a browser's EventSource gives up on an error status (unlike a dropped
        # connection, which it retries itself): the page must open the stream again.
        if route.request.url in refused:
            route.continue_()
        else:
            refused.append(route.request.url)
            route.fulfill(status=503, body='{"detail": "ledger unavailable"}')

    page.route("**/jobs/stream*", once_unavailable)
    page.route("**/messages/*/stream*", once_unavailable)
    page.goto(gateway.url + "/")
    expect(page.locator("#job-rows tr")).to_have_count(0)
    # Recorded while the feed was refused: the list still shows it, then follows live.
    early = schedule(gateway, "steady")
    expect(page.locator("#live")).to_have_text("● live")
    offset = schedule(gateway, "steady")
    for job in (early, offset):
        expect(page.locator(f"#job-rows tr[data-offset='{job}']")).to_have_attribute(
            "data-state", "done"
        )

    running = schedule(gateway, "steady")
    page.goto(f"{gateway.url}/#/jobs/{running}")
    expect(page.locator("#job-outcome")).to_have_attribute("data-state", "done")
    assert [kind for _, kind in steps_of(page)] == ["result", "result", "result", "done"]
    assert len(refused) == 2, refused
    assert not [error for error in watched.errors if "503" not in error], watched.errors


def test_a_filter_the_api_refuses_says_why(gateway, watched):
    schedule(gateway, "steady", ["blue"])
    page = watched.page
    page.goto(gateway.url + "/")
    expect(page.locator("#job-rows tr")).to_have_count(1)

    page.locator("#filters input[name=tag]").fill("<b>not a tag</b>")
    empty = page.locator("#jobs-empty")
    expect(empty).to_contain_text("Cannot list these jobs: ")
    expect(empty).to_contain_text("tag")
    expect(page.locator("#job-rows tr")).to_have_count(0)
    expect(page.locator("#live")).to_have_text("")
    assert page.locator("#jobs b").count() == 0
    # The browser itself reports the refused requests; the page adds no error of its own.
    assert all("422" in error or "text/event-stream" in error for error in watched.errors), (
        watched.errors
    )

    page.locator("#filters input[name=tag]").fill("blue")
    expect(page.locator("#job-rows tr")).to_have_count(1)
    expect(empty).to_be_hidden()
    expect(page.locator("#live")).to_have_text("● live")


def test_hostile_values_show_as_text_and_never_run(gateway, watched):
    offset = schedule(gateway, "hostile")
    page = watched.page
    page.goto(gateway.url + "/")
    row = page.locator(f"#job-rows tr[data-offset='{offset}']")
    expect(row).to_have_attribute("data-state", "failed")
    expect(row.locator(".reason")).to_contain_text(HOSTILE_MARKUP)

    page.goto(f"{gateway.url}/#/jobs/{offset}")
    expect(page.locator("#job-outcome")).to_have_attribute("data-state", "failed")
    expect(page.locator("#timeline > li[data-seq='0'] pre")).to_have_text(HOSTILE_VALUE)
    expect(page.locator("#timeline > li[data-seq='1'] pre")).to_contain_text(
        json.dumps(HOSTILE_MARKUP)
    )
    expect(page.locator("#job-outcome")).to_contain_text(HOSTILE_MARKUP)
    # As text, the markup made no element: no script or image anywhere in the body.
    assert page.locator("body script, body img").count() == 0
    clean(watched)  # no alert() ran, no CSP violation was reported


def test_a_narrow_screen_shows_everything_in_one_column(gateway, browser):
    schedule(gateway, "steady", ["narrow"])
    context = browser.new_context(viewport={"width": 360, "height": 740})
    context.set_default_timeout(SEEN)
    try:
        watched = Watched(context.new_page())
        page = watched.page
        page.goto(gateway.url + "/")
        expect(page.locator("#job-rows tr")).to_have_count(1)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0
        clean(watched)
    finally:
        context.close()


def test_make_screenshot_writes_the_picture(tmp_path, amqp_base_url):
    """`make screenshot`'s command: its own gateway, vhost and jobs, then a PNG."""
    out = tmp_path / "dashboard.png"
    done = subprocess.run(
        [sys.executable, "-m", "harness.screenshot", str(out)],
        cwd=ROOT,
        env={**os.environ, "JOBCAST_TEST_AMQP_URL": amqp_base_url},
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-3000:]
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
