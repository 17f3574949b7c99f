"""OpenTelemetry (the otel extra): one trace from POST /schedule through the job message, every
step and every reply, across the gateway and a worker process."""

import httpx
import orjson
import pytest

from tests.support.waiting import eventually

pytest.importorskip("opentelemetry.sdk.trace", reason="the otel extra is not installed")

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{TRACE_ID}-b7ad6b7169203331-01"
JOB = {"deployment": "Docker", "framework": "FastAPI", "fn": "default_fn"}


def spans(log: str) -> list[dict]:
    """The spans a process exported to its log (JOBCAST_TRACING=console: one JSON per line)."""
    found = []
    for line in log.splitlines():
        if line.startswith("{") and '"context"' in line:
            found.append(orjson.loads(line))
    return found


def lines(log: str) -> list[dict]:
    return [orjson.loads(line) for line in log.splitlines() if line.startswith('{"time"')]


async def test_a_trace_runs_from_post_schedule_through_steps_and_replies(spawn, jobcast_env):
    env = {**jobcast_env, "JOBCAST_TRACING": "console", "JOBCAST_LOG_FORMAT": "json"}
    gateway = spawn("gateway", env, name="gateway")
    worker = spawn("worker", env, name="worker")
    gateway.wait_http()
    worker.wait_log("worker consuming")
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
        answer = await http.post("/schedule", json=JOB, headers={"traceparent": TRACEPARENT})
        offset = answer.json()["offset"]
        await eventually(
            lambda: http.get(f"/messages/{offset}"),
            until=lambda r: r.json()[-1:] == ["done"],
            what="job done",
        )
    worker.wait_log('"job done')

    def ours(found: list[dict]) -> list[str]:
        return [s["name"] for s in found if s["context"]["trace_id"] == "0x" + TRACE_ID]

    async def replies_stored() -> int:
        return len(
            [
                n
                for n in ours(spans(gateway.log()))
                if n.startswith("jobcast.replies") and n.endswith("process")
            ]
        )

    await eventually(
        replies_stored,
        until=lambda n: n >= 4,
        what="the gateway stored all four replies under the trace",
    )
    at_gateway = ours(spans(gateway.log()))
    at_worker = ours(spans(worker.log()))
    assert "POST /schedule" in at_gateway  # continues the caller's traceparent
    assert any(n.startswith("default.jobcast.jobs publish") for n in at_gateway)
    assert any(n.startswith("default.jobcast.jobs process") for n in at_worker)
    assert [n for n in at_worker if " step " in n] == [
        "default_fn step 0",
        "default_fn step 1",
        "default_fn step 2",
    ]
    reply_publishes = [n for n in at_worker if n == "jobcast.replies.reply.* publish"]
    assert len(reply_publishes) == 4  # three results and done
    # span names never carry the offset (one name per job would be no name at all)
    assert not [n for n in at_gateway + at_worker if f"reply.{offset}" in n]
    # and every log line the worker wrote about the job names the trace
    about_job = [line for line in lines(worker.log()) if line.get("offset") == offset]
    assert about_job
    assert all(line.get("trace_id") == TRACE_ID for line in about_job), about_job
