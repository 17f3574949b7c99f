"""docs/dashboard.png, regenerated: `make screenshot` (`python -m harness.screenshot [OUT]`).

Starts `jobcast serve` with the demo pipelines (harness/demo_pipelines.py) in a throwaway
vhost of the local RabbitMQ and a throwaway SQLite ledger, runs jobs until some are done,
one has failed and two are running, and photographs the page in Debian's chromium.
"""

import sys
import tempfile
import time
from pathlib import Path

import httpx

from harness.broker import Vhost, base_url
from harness.processes import JobcastProcess, free_port

OUT = Path("docs/dashboard.png")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 30_000


def schedule(url: str, fn: str, deployment: str, tags: list[str]) -> int:
    body = {"deployment": deployment, "framework": "FastAPI", "fn": fn, "tags": tags}
    answer = httpx.post(f"{url}/schedule", json=body, timeout=10)
    answer.raise_for_status()
    return int(answer.json()["offset"])


def shoot(url: str, out: Path) -> None:
    """Run the demo jobs on the gateway at `url` and photograph its page into `out`."""
    from playwright.sync_api import expect, sync_playwright

    from harness.browser import CHROMIUM

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900}, device_scale_factor=1)
        page.set_default_timeout(WAIT_MS)
        page.goto(url + "/")
        finished = [
            schedule(url, "thumbnail", name, ["images", team])
            for name, team in [
                ("Docker", "team:web"),
                ("Kubernetes", "team:web"),
                ("Nomad", "team:mobile"),
            ]
        ]
        failed = schedule(url, "report", "Lambda", ["nightly"])
        for offset in [*finished, failed]:
            expect(page.locator(f"#job-rows tr[data-offset='{offset}'] .state")).to_contain_text(
                "failed" if offset == failed else "done"
            )
        running = [schedule(url, "ingest", name, ["etl"]) for name in ("warehouse", "events")]
        for offset in running:
            expect(page.locator(f"#job-rows tr[data-offset='{offset}'] td.steps")).to_have_text("1")
        expect(page.locator("[data-figure=done] dd")).to_have_text(str(len(finished)))
        expect(page.locator("[data-figure=running] dd")).to_have_text(str(len(running)))
        out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(out), full_page=True)
        browser.close()


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else OUT
    vhost = Vhost(base_url(), label="screenshot")
    try:
        with tempfile.TemporaryDirectory() as scratch:
            env = {
                "JOBCAST_AMQP_URL": vhost.url,
                "JOBCAST_DATABASE_URL": f"sqlite:///{scratch}/ledger.db",
                "JOBCAST_PORT": str(free_port()),
                "JOBCAST_PIPELINES": "harness.demo_pipelines",
            }
            gateway = JobcastProcess("serve", env, Path(scratch)).start()
            try:
                gateway.wait_http()
                started = time.monotonic()
                shoot(gateway.url, out)
                print(f"{out} written ({time.monotonic() - started:.1f} s)", file=sys.stderr)
            finally:
                gateway.stop()
    finally:
        vhost.delete()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
