"""Operating jobcast: /metrics moving, /health and /ready on the gateway and on a worker's own
port, /ready turning red when the broker goes away, job fields on every JSON log line."""

import asyncio
import subprocess

import httpx
import orjson
from prometheus_client.parser import text_string_to_metric_families

from harness.broker import Vhost
from harness.processes import JOBCAST, free_port
from tests.support.waiting import eventually

JOB = {"deployment": "Docker", "framework": "FastAPI", "fn": "default_fn"}
DONE = ["result1", "result2", "result3", "done"]


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a Prometheus exposition, by name and labels."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(found: dict, name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


async def finished(http: httpx.AsyncClient, offset: int) -> list[object]:
    """The job's messages once it is done or failed."""
    await eventually(
        lambda: _state(http, offset),
        until=lambda s: s in ("done", "failed"),
        what=f"job {offset} ended",
    )
    return await _messages(http, offset)


async def _state(http: httpx.AsyncClient, offset: int) -> str:
    return str((await http.get(f"/jobs/{offset}")).json()["state"])


async def _messages(http: httpx.AsyncClient, offset: int) -> list[object]:
    return (await http.get(f"/messages/{offset}")).json()


async def test_metrics_move_with_jobs(spawn, jobcast_env):
    env = {**jobcast_env, "JOBCAST_PIPELINES": "tests.e2e.follow_pipelines"}
    server = spawn("serve", env)
    server.wait_http()
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        before = samples((await http.get("/metrics")).text)
        assert value(before, "jobcast_jobs_scheduled_total", fn="default_fn") == 0

        done = (await http.post("/schedule", json=JOB)).json()["offset"]
        failed = (await http.post("/schedule", json={**JOB, "fn": "breaks"})).json()["offset"]
        unknown = (await http.post("/schedule", json={**JOB, "fn": "nope"})).json()["offset"]
        assert await finished(http, done) == DONE
        await finished(http, failed)
        await finished(http, unknown)

        async def scrape() -> dict:
            return samples((await http.get("/metrics")).text)

        after = await eventually(
            scrape,
            until=lambda m: (
                value(
                    m,
                    "jobcast_dead_lettered_total",
                    queue="jobcast.jobs",
                    reason="unknown_pipeline",
                )
                == 1
            ),
            what="dead letters counted",
        )
        response = await http.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    assert value(after, "jobcast_jobs_scheduled_total", fn="default_fn") == 1
    assert value(after, "jobcast_jobs_scheduled_total", fn="breaks") == 1
    assert value(after, "jobcast_jobs_completed_total", fn="default_fn") == 1
    assert value(after, "jobcast_jobs_failed_total", fn="breaks") == 1
    assert value(after, "jobcast_jobs_failed_total", fn="nope") == 1
    assert (
        value(after, "jobcast_dead_lettered_total", queue="jobcast.jobs", reason="step_failed") == 1
    )
    for step in ("0", "1", "2"):
        assert (
            value(
                after,
                "jobcast_step_duration_seconds_count",
                fn="default_fn",
                step=step,
                outcome="ok",
            )
            == 1
        )
    assert (
        value(after, "jobcast_step_duration_seconds_count", fn="breaks", step="1", outcome="error")
        == 1
    )
    assert value(after, "jobcast_ledger_write_seconds_count") >= 1
    assert value(after, "jobcast_jobs_in_flight") == 0
    # no per-offset labels anywhere
    assert not any("offset" in dict(labels) for _, labels in after)
    # every message taken from a queue is counted by one mechanism, whichever library carried
    # it (FastStream's own faststream_* metrics are gone with its middlewares)
    assert value(after, "jobcast_messages_received_total", queue="jobcast.jobs") == 3
    assert not any(name.startswith("faststream_") for name, _ in after)


async def test_worker_serves_health_ready_and_metrics_on_its_own_port(spawn, jobcast_env):
    worker_port = free_port()
    gateway = spawn("gateway", jobcast_env, name="gateway")
    worker = spawn(
        "worker", {**jobcast_env, "JOBCAST_WORKER_PORT": str(worker_port)}, name="worker"
    )
    gateway.wait_http()
    probe = f"http://127.0.0.1:{worker_port}"
    async with httpx.AsyncClient(timeout=10) as http:
        await eventually(
            lambda: _status(http, probe + "/ready"), until=lambda s: s == 200, what="worker ready"
        )
        assert (await http.get(probe + "/health")).json() == {"status": "ok"}
        assert (await http.get(probe + "/ready")).json() == {
            "ready": True,
            "broker": True,
            "accepting_jobs": True,
        }
        offset = (await http.post(gateway.url + "/schedule", json=JOB)).json()["offset"]
        await eventually(
            lambda: _messages_at(http, gateway.url, offset),
            until=lambda m: m == DONE,
            what="job done",
        )
        found = samples((await http.get(probe + "/metrics")).text)
    assert value(found, "jobcast_jobs_completed_total", fn="default_fn") == 1
    assert (
        value(found, "jobcast_step_duration_seconds_count", fn="default_fn", step="2", outcome="ok")
        == 1
    )
    assert worker.proc is not None
    assert worker.proc.poll() is None


async def test_ready_turns_red_when_the_broker_goes_away(spawn, amqp_base_url, sqlite_url):
    vhost = Vhost(amqp_base_url)
    deleted = False
    worker_port = free_port()
    env = {
        "JOBCAST_AMQP_URL": vhost.url,
        "JOBCAST_DATABASE_URL": sqlite_url,
        "JOBCAST_PORT": str(free_port()),
        "JOBCAST_STEP_SECONDS": "0.05",
    }
    try:
        gateway = spawn("gateway", env, name="gateway")
        spawn("worker", {**env, "JOBCAST_WORKER_PORT": str(worker_port)}, name="worker")
        gateway.wait_http()
        worker_ready = f"http://127.0.0.1:{worker_port}/ready"
        async with httpx.AsyncClient(timeout=10) as http:
            await eventually(
                lambda: _status(http, worker_ready), until=lambda s: s == 200, what="worker ready"
            )
            offset = (await http.post(gateway.url + "/schedule", json=JOB)).json()["offset"]
            await eventually(
                lambda: _messages_at(http, gateway.url, offset),
                until=lambda m: m == DONE,
                what="job done",
            )

            vhost.delete()  # the broker is gone for both processes
            deleted = True

            await eventually(
                lambda: _status(http, gateway.url + "/ready"),
                until=lambda s: s == 503,
                what="gateway not ready",
            )
            ready = (await http.get(gateway.url + "/ready")).json()
            assert ready["broker"] is False
            assert ready["ready"] is False
            assert ready["ledger"] is True
            await eventually(
                lambda: _status(http, worker_ready),
                until=lambda s: s == 503,
                what="worker not ready",
            )
            # alive all the same, and results are still served from the ledger
            assert (await http.get(gateway.url + "/health")).status_code == 200
            assert await _messages_at(http, gateway.url, offset) == DONE
            # a new job cannot be confirmed: 503, never an offset
            refused = await http.post(gateway.url + "/schedule", json=JOB)
            assert refused.status_code == 503
            # and the CLI says so plainly
            cli = await asyncio.to_thread(
                subprocess.run,
                [*JOBCAST, "submit", "--url", gateway.url],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert cli.returncode == 3
            assert "cannot take it now" in cli.stderr
            assert "RabbitMQ" in cli.stderr
            assert "Traceback" not in cli.stderr
    finally:
        if not deleted:
            vhost.delete()


async def test_json_logs_carry_the_job_on_every_line(spawn, jobcast_env):
    server = spawn("serve", {**jobcast_env, "JOBCAST_LOG_FORMAT": "json"})
    server.wait_http()
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        offset = (await http.post("/schedule", json=JOB)).json()["offset"]
        await eventually(
            lambda: _messages(http, offset), until=lambda m: m == DONE, what="job done"
        )
    server.wait_log('"job done')
    lines = [orjson.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    done = [line for line in lines if line["message"].startswith("job done")]
    assert done, lines
    assert done[0]["offset"] == offset
    assert done[0]["fn"] == "default_fn"
    assert done[0]["delivery"] == 0
    about_jobs = [line for line in lines if line["logger"].startswith("consumer.")]
    assert about_jobs
    assert all(line.get("offset") == offset for line in about_jobs), about_jobs


async def _status(http: httpx.AsyncClient, url: str) -> int:
    try:
        return (await http.get(url)).status_code
    except httpx.TransportError:
        return 0


async def _messages_at(http: httpx.AsyncClient, base: str, offset: int) -> list[object]:
    return (await http.get(f"{base}/messages/{offset}")).json()
