"""The AsyncAPI document says what a running jobcast does on the broker, whichever library
carries the messages: the queues its processes consume are the ones it documents receiving on."""

import asyncio

from harness.broker import Vhost, rabbitmqctl
from jobcast.asyncapi import document
from tests.support.waiting import eventually


def _consumed(vhost: Vhost) -> set[str]:
    """The queues of `vhost` that have a consumer, as RabbitMQ lists them."""
    out = rabbitmqctl(
        "list_consumers", "-p", vhost.name, "queue_name", "--quiet", "--no-table-headers"
    )
    return {line.strip() for line in out.splitlines() if line.strip()}


def _documented_receiving() -> set[str]:
    doc = document()
    channels = [
        doc["channels"][op["channel"]["$ref"].removeprefix("#/channels/")]
        for op in doc["operations"].values()
        if op["action"] == "receive"
    ]
    return {channel["bindings"]["amqp"]["queue"]["name"] for channel in channels}


async def test_a_running_jobcast_consumes_exactly_the_queues_it_documents(
    spawn, jobcast_env, vhost
):
    server = spawn("serve", jobcast_env)
    server.wait_http()
    documented = _documented_receiving()
    consumed = await eventually(
        lambda: asyncio.to_thread(_consumed, vhost),
        until=lambda found: found == documented,
        what="the documented queues consumed",
    )
    assert consumed == {"jobcast.jobs", "jobcast.schedule", "jobcast.ledger", "jobcast.progress"}
