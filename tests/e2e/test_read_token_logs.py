"""A served gateway with JOBCAST_AUTH=on, the access log on and DEBUG logging: a browser-style
follow with `?token=` and AMQP submissions with a key (valid and not) run to the end, and not
one line of the process's log carries the read token or a key."""

import os
import subprocess

import aio_pika
import httpx

from contracts import JobAccepted, ScheduleRejected
from contracts.headers import HEADER_KEY
from contracts.topology import SCHEDULE_QUEUE
from harness.processes import JOBCAST
from tests.e2e.sse import read_events

JOB = {"deployment": "Docker", "framework": "FastAPI", "fn": "default_fn"}
WRONG = "jck_" + "w" * 43


def add_key(env: dict[str, str], name: str) -> str:
    """`jobcast keys add NAME`: the secret it shows once."""
    made = subprocess.run(
        [*JOBCAST, "keys", "add", name],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return made.stdout.strip()


async def ask(amqp_url: str, key: str) -> bytes:
    async with await aio_pika.connect(amqp_url) as connection:
        channel = await connection.channel()
        answers = await channel.declare_queue(exclusive=True)
        message = aio_pika.Message(
            b'{"deployment": "d", "framework": "f", "fn": "default_fn"}',
            headers={HEADER_KEY: key},
            reply_to=answers.name,
        )
        await channel.default_exchange.publish(message, routing_key=SCHEDULE_QUEUE.name)
        async with answers.iterator(timeout=30) as messages:
            async for answer in messages:
                await answer.ack()
                return answer.body
    raise AssertionError("no answer")


async def test_no_read_token_or_key_in_any_log_line(spawn, jobcast_env, amqp_url):
    env = {**jobcast_env, "JOBCAST_AUTH": "on", "JOBCAST_LOG_LEVEL": "DEBUG"}
    secret = add_key(env, "alice")
    server = spawn("serve", {**env, "JOBCAST_ACCESS_LOG": "true"}, name="serve")
    server.wait_http()
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        answer = await http.post(
            "/schedule", json=JOB, headers={"Authorization": f"Bearer {secret}"}
        )
        offset, token = answer.json()["offset"], answer.json()["read_token"]
        # as a browser's EventSource follows: no header, the token in the URL
        events = await read_events(http, f"/messages/{offset}/stream?token={token}")
        assert [e.event for e in events] == ["result", "result", "result", "done"]
        refused = await http.get(f"/messages/{offset}/stream?token={token}x")
        assert refused.status_code == 401
    JobAccepted.model_validate_json(await ask(amqp_url, secret))
    assert ScheduleRejected.model_validate_json(await ask(amqp_url, WRONG)).error == "unauthorized"
    server.stop()
    logs = server.log()
    assert f"/messages/{offset}/stream?token=***" in logs  # the access log printed the request
    assert "unknown API key" in logs  # the refused submission was logged, dead-lettered
    for text in (token, token.split(".")[1], secret, WRONG):
        assert text not in logs
