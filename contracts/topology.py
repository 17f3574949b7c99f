"""The broker topology: every exchange, queue and routing key jobcast uses, named once.

These names are part of the public contract; other services bind to them. RabbitMQ refuses
to redeclare a queue with other arguments, so nothing else in jobcast declares them again
(messaging/declare.py declares them). Plain data: no broker library is needed to read them.
"""

from dataclasses import dataclass, field
from enum import StrEnum

Arguments = dict[str, int | str]
"""A queue's x-arguments, as declared."""


class ExchangeType(StrEnum):
    """The kinds of exchange jobcast declares."""

    FANOUT = "fanout"
    TOPIC = "topic"


@dataclass(frozen=True)
class Exchange:
    """An exchange: its name, its kind, durable."""

    name: str
    type: ExchangeType
    durable: bool = True


# NOTE: eq=False: a queue is the one object named here (`queue is DEAD_QUEUE`), and hashable
# although its arguments are a dict.
@dataclass(frozen=True, eq=False)
class Queue:
    """A durable queue: its name, its x-arguments (`x-queue-type` included), and the key it
    is bound with, if it is bound to an exchange."""

    name: str
    arguments: Arguments = field(default_factory=dict)
    routing_key: str = ""
    durable: bool = True

    @property
    def quorum(self) -> bool:
        """True for a quorum queue (replicated, with a delivery limit)."""
        return self.arguments.get("x-queue-type") == "quorum"


DELIVERY_LIMIT = 10
"""Broker-side backstop: a message redelivered more often than this is dead-lettered.

jobcast's own retry cap acts first; this one catches crash loops (a worker that dies on a job).
"""

DEAD_LETTER_EXCHANGE = Exchange("jobcast.dlx", ExchangeType.FANOUT)

DEAD_MAX_LENGTH = 100_000
"""jobcast.dead keeps at most this many messages; beyond it the oldest are dropped."""
DEAD_MAX_BYTES = 256 * 1024 * 1024
"""jobcast.dead keeps at most this many body bytes (headers not counted); beyond it the oldest
are dropped."""
DEAD_LETTER_BODY_LIMIT = 64 * 1024
"""A copy jobcast dead-letters itself keeps at most this many bytes of the body (the rest is
cut off, and its headers say so). The broker's own dead-lettering keeps whole bodies."""

DEAD_QUEUE = Queue(
    "jobcast.dead",
    {
        "x-queue-type": "quorum",
        "x-max-length": DEAD_MAX_LENGTH,
        "x-max-length-bytes": DEAD_MAX_BYTES,
        # NOTE: drop-head, not reject-publish: the source queues dead-letter at-least-once, so
        # a full jobcast.dead that refused new messages would keep them in jobcast.jobs/ledger/
        # schedule (and copies would fail, so the consumers would reject them into that same
        # wait). Dropping the oldest keeps the queues moving and keeps the newest, the ones an
        # operator is looking for.
        "x-overflow": "drop-head",
    },
    routing_key="#",
)
"""Every message jobcast or the broker gave up on, bounded (DEAD_MAX_LENGTH, DEAD_MAX_BYTES);
bound to DEAD_LETTER_EXCHANGE."""

REPLIES_EXCHANGE = Exchange("jobcast.replies", ExchangeType.TOPIC)


def _dead_lettered() -> Arguments:
    return {
        "x-queue-type": "quorum",
        "x-delivery-limit": DELIVERY_LIMIT,
        "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE.name,
        # NOTE: at-least-once dead-lettering keeps a message until jobcast.dead confirms it;
        # RabbitMQ requires reject-publish overflow for it.
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }


JOBS_QUEUE = Queue("jobcast.jobs", _dead_lettered())
"""Workers consume jobs here."""

SCHEDULE_QUEUE = Queue("jobcast.schedule", _dead_lettered())
"""Services submit JobRequests here over AMQP; with reply_to they get JobAccepted back."""

REPLY_KEY_ALL = "reply.*"

LEDGER_QUEUE = Queue("jobcast.ledger", _dead_lettered(), routing_key=REPLY_KEY_ALL)
"""The query side's durable queue on the reply topic: replies wait here while it is down;
bound to REPLIES_EXCHANGE."""

PROGRESS_QUEUE = Queue("jobcast.progress", {"x-queue-type": "classic", "x-message-ttl": 30_000})
"""Workers ask here (RPC) how far a redelivered job already got."""

ALL_QUEUES = (JOBS_QUEUE, SCHEDULE_QUEUE, LEDGER_QUEUE, DEAD_QUEUE, PROGRESS_QUEUE)

BINDINGS = ((DEAD_QUEUE, DEAD_LETTER_EXCHANGE), (LEDGER_QUEUE, REPLIES_EXCHANGE))
"""(queue, exchange) pairs: each queue bound to the exchange with its routing_key."""

DIRECT_REPLY_TO = "amq.rabbitmq.reply-to"
"""RabbitMQ's pseudo-queue for RPC answers: no queue to declare or delete."""


def reply_key(offset: int) -> str:
    """The routing key of every reply of job `offset`: bind it to follow one job."""
    return f"reply.{offset}"
