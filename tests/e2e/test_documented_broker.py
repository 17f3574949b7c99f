"""The AsyncAPI document says what a running jobcast does on the broker, whichever library
carries the messages: the queues its processes consume are the ones it documents receiving on."""

import asyncio

from contracts.topology import CONTROL_QUEUE_PREFIX
from harness.broker import Vhost, rabbitmqctl
from jobcast.asyncapi import document
from tests.support.waiting import eventually


def _consumed(vhost: Vhost) -> set[str]:
    """The queues of `vhost` that have a consumer, as RabbitMQ lists them (a worker's own
    control queue as `jobcast.control.*`)."""
    out = rabbitmqctl(
        "list_consumers", "-p", vhost.name, "queue_name", "--quiet", "--no-table-headers"
    )
    names = {line.strip() for line in out.splitlines() if line.strip()}
    return {f"{CONTROL_QUEUE_PREFIX}*" if n.startswith(CONTROL_QUEUE_PREFIX) else n for n in names}


def _documented_receiving() -> set[str]:
    doc = document()
    channels = [
        doc["channels"][op["channel"]["$ref"].removeprefix("#/channels/")]
        for op in doc["operations"].values()
        if op["action"] == "receive"
    ]
    # NOTE: received on an exchange (jobcast.control): each worker consumes a queue of its own
    return {
        amqp["queue"]["name"] if "queue" in amqp else f"{amqp['exchange']['name']}.*"
        for amqp in (channel["bindings"]["amqp"] for channel in channels)
    }


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
    assert consumed == {
        "jobcast.jobs",
        "jobcast.schedule",
        "jobcast.schedule.batch",
        "jobcast.ledger",
        "jobcast.progress",
        "jobcast.cancel",
        "jobcast.handed-back",
        "jobcast.control.*",
    }
