"""The dashboard with JOBCAST_AUTH=on in a real headless browser (Debian's chromium): it asks
for an API key, refuses a wrong one in words, shows and follows only that key's jobs, and keeps
the key out of the address, localStorage and cookies (sessionStorage only)."""

import os
import subprocess
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, expect

from harness.processes import JOBCAST, JobcastProcess
from tests.e2e.browser import Watched, chromium

SEEN = 20_000  # ms
expect.set_options(timeout=SEEN)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def watched(browser: Browser) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(SEEN)
    yield Watched(context.new_page())
    context.close()


def dashboard_env(jobcast_env: dict[str, str], auth: str) -> dict[str, str]:
    return {
        **jobcast_env,
        "JOBCAST_AUTH": auth,
        "JOBCAST_PIPELINES": "tests.e2e.dashboard_pipelines",
        "JOBCAST_STEP_SECONDS": "0.4",
    }


def keys(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [*JOBCAST, "keys", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def schedule(gateway: JobcastProcess, key: str, fn: str = "steady") -> int:
    answer = httpx.post(
        f"{gateway.url}/schedule",
        json={"deployment": "Docker", "framework": "FastAPI", "fn": fn},
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )
    answer.raise_for_status()
    return int(answer.json()["offset"])


def use_key(watched: Watched, key: str) -> None:
    page = watched.page
    page.locator("#api-key").fill(key)
    page.locator("#key-use").click()


def test_with_auth_on_the_page_asks_for_a_key_and_follows_only_its_jobs(
    spawn, jobcast_env, watched
):
    env = dashboard_env(jobcast_env, "on")
    alice, bob, gone = (keys(env, "add", name) for name in ("alice", "bob", "gone"))
    keys(env, "revoke", "gone")
    gateway = spawn("serve", env, name="serve")
    gateway.wait_http()
    bobs = schedule(gateway, bob)
    alices = schedule(gateway, alice)

    page = watched.page
    page.goto(gateway.url + "/")
    # No key: every call is refused, and the page says what to do.
    expect(page.locator("#key-form")).to_be_visible()
    expect(page.locator("#key-status")).to_have_text("Enter an API key: this gateway asks for one")
    expect(page.locator("#jobs-empty")).to_contain_text("Enter an API key")
    expect(page.locator("#sign-out")).to_be_hidden()

    use_key(watched, "jck_not-a-key-anyone-made")
    expect(page.locator("#key-status")).to_have_text(
        "Enter an API key: the gateway does not know this one"
    )
    use_key(watched, gone)
    expect(page.locator("#key-status")).to_contain_text("This key cannot")
    expect(page.locator("#key-status")).to_contain_text("API key revoked")

    use_key(watched, alice)
    expect(page.locator(f"#job-rows tr[data-offset='{alices}']")).to_have_attribute(
        "data-state", "done"
    )
    expect(page.locator("#key-status")).to_have_text("")
    expect(page.locator("#sign-out")).to_be_visible()
    expect(page.locator("#live")).to_have_text("● live")
    expect(page.locator("[data-figure=workers] dd")).to_have_text("1")
    # A job of hers scheduled now shows in the list and ends done there, live.
    later = schedule(gateway, alice)
    expect(page.locator(f"#job-rows tr[data-offset='{later}']")).to_have_attribute(
        "data-state", "done"
    )
    shown = page.locator("#job-rows tr").evaluate_all("rows => rows.map(r => r.dataset.offset)")
    assert sorted(shown) == sorted([str(alices), str(later)]), shown
    assert str(bobs) not in shown

    # One job followed live to done (its stream read with the key's header).
    running = schedule(gateway, alice)
    page.goto(f"{gateway.url}/#/jobs/{running}")
    expect(page.locator("#job-outcome")).to_have_attribute("data-state", "running")
    expect(page.locator("#job-outcome")).to_have_attribute("data-state", "done")
    kinds = page.locator("#timeline > li").evaluate_all("items => items.map(i => i.dataset.kind)")
    assert kinds == ["result", "result", "result", "done"]
    # Bob's job is, for her, a job that does not exist.
    page.goto(f"{gateway.url}/#/jobs/{bobs}")
    expect(page.locator("#job-outcome")).to_contain_text(f"job #{bobs} does not exist")

    # The key lives in this tab's sessionStorage only.
    assert page.evaluate("sessionStorage.getItem('jobcast.apiKey')") == alice
    assert alice not in page.evaluate("JSON.stringify(Object.assign({}, localStorage))")
    assert page.context.cookies() == []
    assert all(alice not in url for url in [page.url, *watched.requests]), watched.requests
    assert alice not in page.content()

    page.goto(gateway.url + "/")
    page.locator("#sign-out").click()
    expect(page.locator("#key-status")).to_have_text("Enter an API key: this gateway asks for one")
    assert page.evaluate("sessionStorage.length") == 0
    # Refused calls are reported by the browser; the page's own code raised nothing.
    assert not [e for e in watched.errors if "Failed to load resource" not in e], watched.errors
    assert watched.dialogs == []


def test_with_auth_off_nothing_asks_for_a_key(spawn, jobcast_env, watched):
    gateway = spawn("serve", dashboard_env(jobcast_env, "off"), name="serve")
    gateway.wait_http()
    page = watched.page
    page.goto(gateway.url + "/")
    expect(page.locator("#live")).to_have_text("● live")
    expect(page.locator("[data-figure=workers] dd")).to_have_text("1")
    expect(page.locator("#key-form")).to_have_count(1)
    expect(page.locator("#key-form")).to_be_hidden()
    assert watched.errors == [], watched.errors
