"""Declaring jobcast's topology (contracts/topology.py) on the broker."""

import asyncio
import json
import logging
import shlex
from collections.abc import Awaitable, Callable
from urllib.parse import unquote, urlsplit

import aio_pika
import aio_pika.abc
import aio_pika.exceptions
import aiormq.exceptions

from contracts.errors import BrokerUnavailableError
from contracts.topology import (
    ALL_EXCHANGES,
    ALL_QUEUES,
    BINDINGS,
    DEAD_MAX_BYTES,
    DEAD_MAX_LENGTH,
    DEAD_QUEUE,
    QUORUM_SIZE_ARGUMENT,
    declared_arguments,
)
from messaging.connection import connect_once

logger = logging.getLogger(__name__)

TOPOLOGY_WAIT_SECONDS = 30.0
"""How long a process that may not declare the topology waits for a gateway to declare it."""


async def declare_topology(amqp_url: str, quorum_size: int | None = None) -> None:
    """Declare every exchange, queue and binding of the topology (idempotent), so that nothing
    published is unroutable or dead-lettered into nothing, whatever process starts first. A
    quorum queue created now gets `quorum_size` replicas (None: one per node of the cluster).

    Uses a connection of its own: declaring through the broker would cache these queues on its
    default channel, and subscribers would then consume there, ignoring their own prefetch.
    """
    connection = await connect_once(amqp_url)
    async with connection:
        try:
            await _declare(connection, amqp_url, quorum_size)
        except aiormq.exceptions.ChannelAccessRefused:
            # NOTE: a least-privilege user (a worker's, deploy/rabbitmq/definitions.json) may
            # not configure the topology; the gateway's user declares it. Such a process only
            # checks that it is there (a passive declare needs no permission).
            logger.info(
                "this RabbitMQ user may not declare the topology; checking that it exists "
                "(declared by a gateway, or by the broker's definitions)"
            )
            await _check_declared(connection)


async def _check_declared(connection: aio_pika.abc.AbstractConnection) -> None:
    """Passively declare every exchange and queue, waiting up to TOPOLOGY_WAIT_SECONDS for a
    gateway to declare what is missing; BrokerUnavailableError if it is still missing then."""
    deadline = asyncio.get_running_loop().time() + TOPOLOGY_WAIT_SECONDS
    for name, passive in [
        *((e.name, _exchange) for e in ALL_EXCHANGES),
        *((q.name, _queue) for q in ALL_QUEUES),
    ]:
        while not await _exists(connection, passive, name):
            if asyncio.get_running_loop().time() > deadline:
                raise BrokerUnavailableError(
                    f"{name} is not declared on this vhost and this RabbitMQ user may not "
                    "declare it: start a gateway (its user declares the topology) or load "
                    "the broker's definitions (deploy/rabbitmq/definitions.json)"
                )
            await asyncio.sleep(0.5)


Passive = Callable[[aio_pika.abc.AbstractChannel, str], Awaitable[object]]
"""A passive declare of one kind of thing (an exchange, a queue) by name."""


def _exchange(channel: aio_pika.abc.AbstractChannel, name: str) -> Awaitable[object]:
    return channel.declare_exchange(name, passive=True)


def _queue(channel: aio_pika.abc.AbstractChannel, name: str) -> Awaitable[object]:
    return channel.declare_queue(name, passive=True)


async def _exists(connection: aio_pika.abc.AbstractConnection, passive: Passive, name: str) -> bool:
    """Whether `name` exists, by `passive` on a channel of its own (RabbitMQ closes the
    channel of a passive declare that found nothing)."""
    channel = await connection.channel()
    try:
        await passive(channel, name)
    except aio_pika.exceptions.ChannelNotFoundEntity:
        return False
    await channel.close()
    return True


async def _declare(
    connection: aio_pika.abc.AbstractConnection, amqp_url: str, quorum_size: int | None
) -> None:
    channel = await connection.channel()
    for exchange in ALL_EXCHANGES:
        await channel.declare_exchange(
            exchange.name, type=exchange.type.value, durable=exchange.durable
        )
    bound = dict(BINDINGS)
    for queue in ALL_QUEUES:
        try:
            declared = await channel.declare_queue(
                queue.name,
                durable=queue.durable,
                arguments=dict(declared_arguments(queue, quorum_size)),
            )
        except aio_pika.exceptions.ChannelPreconditionFailed as refused:
            other_group_size = QUORUM_SIZE_ARGUMENT in str(refused)
            if queue is not DEAD_QUEUE and not other_group_size:
                raise
            # NOTE: RabbitMQ refuses the new arguments and closes the channel. A jobcast.dead
            # declared before it was bounded (or with other bounds), or a quorum queue created
            # with another initial group size (JOBCAST_QUORUM_SIZE, or none): refusing to start
            # over it would brick an upgrade or a resize, so use it as it is and say so.
            channel = await connection.channel()
            declared = await channel.declare_queue(queue.name, passive=True)
            if other_group_size:
                logger.warning(_OTHER_GROUP_SIZE, queue.name, quorum_size, queue.name)
            else:
                logger.warning(_MIGRATE_DEAD_QUEUE, *_migration_args(amqp_url))
        if queue in bound:
            await declared.bind(bound[queue].name, routing_key=queue.routing_key)


_OTHER_GROUP_SIZE = (
    "%s exists with another initial group size (x-quorum-initial-group-size) than "
    "JOBCAST_QUORUM_SIZE=%s asks for; it keeps the replicas it has (the size counts only when "
    "a queue is created). To change them: rabbitmq-queues add_member / delete_member %s <node>, "
    "or rabbitmq-queues grow <node> all (README, Running on a cluster)"
)

_MIGRATE_DEAD_QUEUE = (
    "jobcast.dead exists with other arguments than this version declares (x-max-length=%s, "
    "x-max-length-bytes=%s, x-overflow=drop-head); using it as it is, so it may be unbounded. "
    "To bound it, either apply a policy: rabbitmqctl set_policy -p %s jobcast-dead "
    "'^jobcast\\.dead$' '%s' --apply-to queues; or drain it, delete it "
    "(rabbitmqctl delete_queue -p %s jobcast.dead) and restart jobcast, which declares it "
    "bounded (docs/operating.md, Dead letters)"
)


def _migration_args(amqp_url: str) -> tuple[object, ...]:
    vhost = unquote(urlsplit(amqp_url).path[1:]) or "/"
    policy = json.dumps(
        {
            "max-length": DEAD_MAX_LENGTH,
            "max-length-bytes": DEAD_MAX_BYTES,
            "overflow": "drop-head",
        },
        separators=(",", ":"),
    )
    return (DEAD_MAX_LENGTH, DEAD_MAX_BYTES, shlex.quote(vhost), policy, shlex.quote(vhost))
