"""The gateway in-process against the real RabbitMQ: topology, persistence, both ledgers."""

import subprocess
from collections.abc import AsyncIterator

import aio_pika
import httpx
import pytest
from fastapi import FastAPI

from jobcast.gateway import create_app
from jobcast.settings import Settings
from tests.support.waiting import eventually

JOB = {"deployment": "Docker", "framework": "FastAPI", "fn": "default_fn"}


async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://jobcast") as http:
            yield http


@pytest.fixture
async def serve(amqp_url: str, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """Gateway and worker in this process, on the real broker and each real ledger."""
    settings = Settings(amqp_url=amqp_url, database_url=database_url, step_seconds=0.05)
    async for http in running(create_app(settings, with_worker=True)):
        yield http


@pytest.fixture
async def gateway_only(amqp_url: str, sqlite_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(amqp_url=amqp_url, database_url=sqlite_url)
    async for http in running(create_app(settings)):
        yield http


async def test_jobs_run_to_done_on_each_ledger(serve):
    offsets = [(await serve.post("/schedule", json=JOB)).json()["offset"] for _ in range(5)]
    for offset in offsets:
        await eventually(
            lambda o=offset: _json(serve, f"/messages/{o}"),
            until=lambda m: m == ["result1", "result2", "result3", "done"],
        )
    assert (await serve.get("/ready")).json() == {
        "ready": True,
        "broker": True,
        "ledger": True,
        "recording": True,
        "accepting_jobs": True,
    }


async def test_jobs_wait_on_a_durable_queue_as_persistent_messages(gateway_only, amqp_url):
    offset = (await gateway_only.post("/schedule", json=JOB)).json()["offset"]
    assert (await gateway_only.get(f"/messages/{offset}")).json() == []
    assert (await gateway_only.get(f"/jobs/{offset}")).json()["state"] == "queued"

    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        jobs = await channel.declare_queue("jobcast.jobs", passive=True)
        message = await jobs.get(timeout=5)
        assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
        body = message.body.decode()
        assert f'"offset":{offset}' in body
        assert '"fn":"default_fn"' in body
        await message.reject(requeue=True)


def test_the_declared_topology_is_the_public_contract(gateway_only_sync):
    vhost = gateway_only_sync
    queues = _rabbitmqctl("list_queues", "-p", vhost, "name", "type", "durable", "arguments")
    assert "jobcast.jobs\tquorum\ttrue" in queues
    assert "jobcast.schedule\tquorum\ttrue" in queues
    assert "jobcast.ledger\tquorum\ttrue" in queues
    assert "jobcast.dead\tquorum\ttrue" in queues
    assert "jobcast.handed-back\tquorum\ttrue" in queues
    jobs_line = next(line for line in queues.splitlines() if line.startswith("jobcast.jobs\t"))
    assert "x-delivery-limit" in jobs_line
    assert "jobcast.dlx" in jobs_line
    exchanges = _rabbitmqctl("list_exchanges", "-p", vhost, "name", "type", "durable")
    assert "jobcast.replies\ttopic\ttrue" in exchanges
    # what workers publish to instead of the default exchange (docs/security.md)
    assert "jobcast.handback\tfanout\ttrue" in exchanges
    assert "jobcast.resume\tfanout\ttrue" in exchanges
    bindings = _rabbitmqctl(
        "list_bindings", "-p", vhost, "source_name", "destination_name", "routing_key"
    )
    assert "jobcast.replies\tjobcast.ledger\treply.*" in bindings
    assert "jobcast.dlx\tjobcast.dead\t#" in bindings
    assert "jobcast.handback\tjobcast.handed-back\t" in bindings
    assert "jobcast.resume\tjobcast.progress\t" in bindings


@pytest.fixture
def gateway_only_sync(vhost, sqlite_url):
    """Start and stop the gateway once, synchronously, leaving its topology behind."""
    import asyncio

    async def once() -> None:
        app = create_app(Settings(amqp_url=vhost.url, database_url=sqlite_url))
        async with app.router.lifespan_context(app):
            pass

    asyncio.run(once())
    return vhost.name


def _rabbitmqctl(*args: str) -> str:
    return subprocess.run(
        ["rabbitmqctl", "-q", *args], capture_output=True, text=True, check=True, timeout=60
    ).stdout


async def _json(http: httpx.AsyncClient, path: str) -> object:
    return (await http.get(path)).json()


async def test_each_consumer_honours_its_own_prefetch(amqp_url, vhost, sqlite_url):
    """Backpressure: a worker takes at most its concurrency, the ledger at most its batch."""
    settings = Settings(
        amqp_url=amqp_url, database_url=sqlite_url, worker_concurrency=7, ledger_prefetch=11
    )
    app = create_app(settings, with_worker=True)
    async with app.router.lifespan_context(app):
        consumers = _rabbitmqctl("list_consumers", "-p", vhost.name, "queue_name", "prefetch_count")
    prefetch = dict(line.split("\t") for line in consumers.strip().splitlines()[1:])
    assert prefetch["jobcast.jobs"] == "7"
    assert prefetch["jobcast.ledger"] == "11"
    assert int(prefetch["jobcast.schedule"]) > 0
