"""The broker topology: every exchange, queue and routing key jobcast uses, named once.

These names are part of the public contract; other services bind to them. RabbitMQ refuses
to redeclare a queue with other arguments, so nothing else in jobcast declares them again.
"""

from typing import TYPE_CHECKING

import aio_pika
from faststream.rabbit import ExchangeType, QueueType, RabbitExchange, RabbitQueue

if TYPE_CHECKING:
    from faststream.rabbit.schemas.queue import QuorumQueueArgs

DELIVERY_LIMIT = 10
"""Broker-side backstop: a message redelivered more often than this is dead-lettered.

jobcast's own retry cap acts first; this one catches crash loops (a worker that dies on a job).
"""

DEAD_LETTER_EXCHANGE = RabbitExchange("jobcast.dlx", type=ExchangeType.FANOUT, durable=True)
DEAD_QUEUE = RabbitQueue("jobcast.dead", queue_type=QueueType.QUORUM)

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
    async with connection, connection.channel() as channel:
        exchanges = {}
        for exchange in (DEAD_LETTER_EXCHANGE, REPLIES_EXCHANGE):
            exchanges[exchange.name] = await channel.declare_exchange(
                exchange.name, type=exchange.type.value, durable=exchange.durable
            )
        for queue in ALL_QUEUES:
            declared = await channel.declare_queue(
                queue.name, durable=queue.durable, arguments=dict(queue.arguments)
            )
            if queue is DEAD_QUEUE:
                await declared.bind(exchanges[DEAD_LETTER_EXCHANGE.name], routing_key="#")
            elif queue is LEDGER_QUEUE:
                await declared.bind(exchanges[REPLIES_EXCHANGE.name], routing_key=REPLY_KEY_ALL)
