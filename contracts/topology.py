"""The broker topology: every exchange, queue and routing key jobcast uses, named once.

These names are part of the public contract; other services bind to them. RabbitMQ refuses
to redeclare a queue with other arguments, so nothing else in jobcast declares them again.
"""

import json
import logging
import shlex
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

import aio_pika
from faststream.rabbit import ExchangeType, QueueType, RabbitExchange, RabbitQueue

if TYPE_CHECKING:
    from faststream.rabbit.schemas.queue import QuorumQueueArgs

logger = logging.getLogger(__name__)

DELIVERY_LIMIT = 10
"""Broker-side backstop: a message redelivered more often than this is dead-lettered.

jobcast's own retry cap acts first; this one catches crash loops (a worker that dies on a job).
"""

DEAD_LETTER_EXCHANGE = RabbitExchange("jobcast.dlx", type=ExchangeType.FANOUT, durable=True)

DEAD_MAX_LENGTH = 100_000
"""jobcast.dead keeps at most this many messages; beyond it the oldest are dropped."""
DEAD_MAX_BYTES = 256 * 1024 * 1024
"""jobcast.dead keeps at most this many body bytes (headers not counted); beyond it the oldest
are dropped."""
DEAD_LETTER_BODY_LIMIT = 64 * 1024
"""A copy jobcast dead-letters itself keeps at most this many bytes of the body (the rest is
cut off, and its headers say so). The broker's own dead-lettering keeps whole bodies."""

_DEAD_BOUNDS: "QuorumQueueArgs" = {
    "x-max-length": DEAD_MAX_LENGTH,
    "x-max-length-bytes": DEAD_MAX_BYTES,
    # NOTE: drop-head, not reject-publish: the source queues dead-letter at-least-once, so a
    # full jobcast.dead that refused new messages would keep them in jobcast.jobs/ledger/
    # schedule (and copies would fail, so the consumers would reject them into that same
    # wait). Dropping the oldest keeps the queues moving and keeps the newest, the ones an
    # operator is looking for.
    "x-overflow": "drop-head",
}
DEAD_QUEUE = RabbitQueue("jobcast.dead", queue_type=QueueType.QUORUM, arguments=_DEAD_BOUNDS)
"""Every message jobcast or the broker gave up on, bounded (DEAD_MAX_LENGTH, DEAD_MAX_BYTES)."""

REPLIES_EXCHANGE = RabbitExchange("jobcast.replies", type=ExchangeType.TOPIC, durable=True)

_DEAD_LETTERED: "QuorumQueueArgs" = {
    "x-delivery-limit": DELIVERY_LIMIT,
    "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE.name,
    # NOTE: at-least-once dead-lettering keeps a message until jobcast.dead confirms it;
    # RabbitMQ requires reject-publish overflow for it.
    "x-dead-letter-strategy": "at-least-once",
    "x-overflow": "reject-publish",
}

JOBS_QUEUE = RabbitQueue("jobcast.jobs", queue_type=QueueType.QUORUM, arguments=_DEAD_LETTERED)
"""Workers consume jobs here."""

SCHEDULE_QUEUE = RabbitQueue(
    "jobcast.schedule", queue_type=QueueType.QUORUM, arguments=_DEAD_LETTERED
)
"""Services submit JobRequests here over AMQP; with reply_to they get JobAccepted back."""

REPLY_KEY_ALL = "reply.*"

LEDGER_QUEUE = RabbitQueue(
    "jobcast.ledger",
    queue_type=QueueType.QUORUM,
    arguments=_DEAD_LETTERED,
    routing_key=REPLY_KEY_ALL,
)
"""The query side's durable queue on the reply topic: replies wait here while it is down."""

PROGRESS_QUEUE = RabbitQueue("jobcast.progress", durable=True, arguments={"x-message-ttl": 30_000})
"""Workers ask here (RPC) how far a redelivered job already got."""

HEADER_REASON = "x-jobcast-reason"
"""Set by jobcast on every message it dead-letters itself: why."""
HEADER_SOURCE = "x-jobcast-source-queue"
"""Set by jobcast on every message it dead-letters itself: where it came from."""
HEADER_EXCHANGE = "x-jobcast-exchange"
"""On a dead-letter copy: the exchange the original was published to ("" is the default)."""
HEADER_ROUTING_KEY = "x-jobcast-routing-key"
"""On a dead-letter copy: the original's routing key."""
HEADER_DELIVERY_COUNT = "x-jobcast-delivery-count"
"""On a dead-letter copy: the original's x-delivery-count (0: it failed on its first delivery)."""
HEADER_USER_ID = "x-jobcast-user-id"
"""On a dead-letter copy: the original's validated user_id, if it had one."""
HEADER_TRUNCATED = "x-jobcast-truncated"
"""On a dead-letter copy: true if its body is only the first DEAD_LETTER_BODY_LIMIT bytes."""
HEADER_ORIGINAL_SIZE = "x-jobcast-original-size"
"""On a truncated dead-letter copy: the original body's size in bytes."""

ALL_QUEUES = (JOBS_QUEUE, SCHEDULE_QUEUE, LEDGER_QUEUE, DEAD_QUEUE, PROGRESS_QUEUE)


def reply_key(offset: int) -> str:
    """The routing key of every reply of job `offset`: bind it to follow one job."""
    return f"reply.{offset}"


async def declare_topology(amqp_url: str) -> None:
    """Declare every exchange, queue and binding above (idempotent), so that nothing
    published is unroutable or dead-lettered into nothing, whatever process starts first.

    Uses a connection of its own: declaring through the broker would cache these queues on its
    default channel, and subscribers would then consume there, ignoring their own prefetch.
    """
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        for exchange in (DEAD_LETTER_EXCHANGE, REPLIES_EXCHANGE):
            await channel.declare_exchange(
                exchange.name, type=exchange.type.value, durable=exchange.durable
            )
        for queue in ALL_QUEUES:
            try:
                declared = await channel.declare_queue(
                    queue.name, durable=queue.durable, arguments=dict(queue.arguments)
                )
            except aio_pika.exceptions.ChannelPreconditionFailed:
                if queue is not DEAD_QUEUE:
                    raise
                # NOTE: a jobcast.dead declared before it was bounded (or with other bounds):
                # RabbitMQ refuses the new arguments and closes the channel. Refusing to start
                # over it would brick an upgrade, so use it as it is and say how to migrate.
                channel = await connection.channel()
                declared = await channel.declare_queue(queue.name, passive=True)
                logger.warning(_MIGRATE_DEAD_QUEUE, *_migration_args(amqp_url))
            if queue is DEAD_QUEUE:
                await declared.bind(DEAD_LETTER_EXCHANGE.name, routing_key="#")
            elif queue is LEDGER_QUEUE:
                await declared.bind(REPLIES_EXCHANGE.name, routing_key=REPLY_KEY_ALL)


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
