"""Passwords in JOBCAST_AMQP_URL and JOBCAST_DATABASE_URL never leave the processes: not in a
log line (DEBUG included, the libraries' too), an error, /ready or /metrics."""

import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from harness.broker import Vhost, rabbitmqctl
from harness.processes import free_port
from tests.support.waiting import eventually

JOB = {"deployment": "Docker", "framework": "FastAPI", "fn": "default_fn"}
DONE = ["result1", "result2", "result3", "done"]


def _with_password(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{host}"))


@pytest.fixture
def broker_password(vhost: Vhost) -> Iterator[tuple[str, str]]:
    """A broker user of this test's own, with a password to look for."""
    user, password = f"jobcast-secret-{uuid.uuid4().hex[:10]}", f"brokerpw-{uuid.uuid4().hex}"
    rabbitmqctl("add_user", user, password)
    try:
        rabbitmqctl("set_permissions", "-p", vhost.name, user, ".*", ".*", ".*")
        yield user, password
    finally:
        rabbitmqctl("delete_user", user)


async def test_no_password_in_any_log_line_error_or_probe(
    spawn, vhost, broker_password, postgres_url
):
    user, amqp_password = broker_password
    # trust auth on the test PostgreSQL: the password is sent and ignored, as a secret would be
    db_password = f"dbpw-{uuid.uuid4().hex}"
    env = {
        "JOBCAST_AMQP_URL": _with_password(vhost.url, user, amqp_password),
        "JOBCAST_DATABASE_URL": _with_password(
            postgres_url, urlsplit(postgres_url).username or "postgres", db_password
        ),
        "JOBCAST_STEP_SECONDS": "0.1",
        "JOBCAST_PORT": str(free_port()),
        "JOBCAST_LOG_LEVEL": "DEBUG",
        "JOBCAST_ACCESS_LOG": "true",
    }
    gateway = spawn("gateway", env, name="gateway")
    worker = spawn("worker", {**env, "JOBCAST_WORKER_PORT": str(free_port())}, name="worker")
    gateway.wait_http()
    worker.wait_log("worker consuming")
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        offset = (await http.post("/schedule", json={**JOB, "fn": "no_such_fn"})).json()
        done = (await http.post("/schedule", json=JOB)).json()["offset"]
        await eventually(lambda: _messages(http, done), until=lambda m: m == DONE, what="job done")
        shown = [
            (await http.get("/ready")).text,
            (await http.get("/metrics")).text,
            (await http.get("/stats")).text,
            str(offset),
        ]
    # a broker that refuses the password (an error that names the URL), then gone for good
    wrong = spawn(
        "worker",
        {**env, "JOBCAST_AMQP_URL": _with_password(vhost.url, user, amqp_password + "-wrong")},
        name="wrong-password",
    )
    assert wrong.wait(60) == 1
    for process in (gateway, worker):
        process.stop()

    logs = {p.name: p.log() for p in (gateway, worker, wrong)}
    assert "connecting to RabbitMQ at amqp://" in logs["gateway"]
    assert f"{user}:***@" in logs["worker"]
    for where, text in [*logs.items(), *(("http", s) for s in shown)]:
        assert amqp_password not in text, where
        assert db_password not in text, where


async def _messages(http: httpx.AsyncClient, offset: int) -> list[str]:
    answer = await http.get(f"/messages/{offset}")
    return list(answer.json()) if answer.status_code == 200 else []
