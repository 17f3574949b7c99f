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
    """An exchange: its name, its kind, durable, and what it is for (the AsyncAPI document's
    text for it)."""

    name: str
    type: ExchangeType
    durable: bool = True
    description: str = ""


# NOTE: eq=False: a queue is the one object named here (`queue is DEAD_QUEUE`), and hashable
# although its arguments are a dict.
@dataclass(frozen=True, eq=False)
class Queue:
    """A durable queue: its name, its x-arguments (`x-queue-type` included), the key it is
    bound with, if it is bound to an exchange, and what it is for (the AsyncAPI document's text
    for it)."""

    name: str
    arguments: Arguments = field(default_factory=dict)
    routing_key: str = ""
    durable: bool = True
    description: str = ""

    @property
    def quorum(self) -> bool:
        """True for a quorum queue (replicated, with a delivery limit)."""
        return self.arguments.get("x-queue-type") == "quorum"


QUORUM_SIZE_ARGUMENT = "x-quorum-initial-group-size"
"""How many replicas (cluster nodes) a quorum queue gets when it is created: JOBCAST_QUORUM_SIZE.
Unset, RabbitMQ 3.10 puts one on every node of the cluster. It counts at creation only: a queue
that exists keeps its replicas (`rabbitmq-queues add_member` / `grow` change them)."""


def declared_arguments(queue: "Queue", quorum_size: int | None = None) -> Arguments:
    """`queue`'s arguments as declared on a broker: its own, and for a quorum queue the
    initial group size `quorum_size` (None: RabbitMQ's default, not sent)."""
    if quorum_size is None or not queue.quorum:
        return dict(queue.arguments)
    return {**queue.arguments, QUORUM_SIZE_ARGUMENT: quorum_size}


DELIVERY_LIMIT = 10
"""Broker-side backstop: a message redelivered more often than this is dead-lettered.

jobcast's own retry cap acts first; this one catches crash loops (a worker that dies on a job).
"""

DEAD_LETTER_EXCHANGE = Exchange(
    "jobcast.dlx",
    ExchangeType.FANOUT,
    description="Where a message goes that jobcast or RabbitMQ gave up on: the queues dead-letter "
    "here, and jobcast publishes its own copies here, saying why. All of it lands in "
    "jobcast.dead.",
)

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
    description="Every message jobcast or RabbitMQ gave up on, for an operator to read: at most "
    f"{DEAD_MAX_LENGTH} messages and {DEAD_MAX_BYTES // 2**20} MiB, the oldest dropped beyond "
    "that. Bound to jobcast.dlx; no jobcast process consumes it.",
)

REPLIES_EXCHANGE = Exchange(
    "jobcast.replies",
    ExchangeType.TOPIC,
    description="Every step's Reply, the moment the step ends, routed reply.<offset>: bind "
    "reply.42 to follow one job, reply.* for all.",
)


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


JOBS_QUEUE = Queue(
    "jobcast.jobs",
    _dead_lettered(),
    description="Scheduled jobs, persistent: gateways publish them, workers run them.",
)

SCHEDULE_QUEUE = Queue(
    "jobcast.schedule",
    _dead_lettered(),
    description="Submit a JobRequest here over AMQP, as to POST /schedule: message_id is the "
    "idempotency key, and with reply_to and correlation_id the answer comes back.",
)

BATCH_QUEUE = Queue(
    "jobcast.schedule.batch",
    _dead_lettered(),
    description="Submit a BatchRequest here over AMQP, as to POST /schedule/batch: up to 1000 "
    "jobs, all scheduled or none, each with its own idempotency_key; with reply_to and "
    "correlation_id the offsets come back, in order.",
)

REPLY_KEY_ALL = "reply.*"

CONTROL_QUEUE_PREFIX = "jobcast.control."

LEDGER_QUEUE = Queue(
    "jobcast.ledger",
    _dead_lettered(),
    routing_key=REPLY_KEY_ALL,
    description="The gateways' queue on jobcast.replies (reply.*): replies wait here while no "
    "gateway runs, and each is stored in the ledger before it is acked.",
)

PROGRESS_QUEUE = Queue(
    "jobcast.progress",
    {"x-queue-type": "classic", "x-message-ttl": 30_000},
    description="Internal RPC: a worker asks how far a redelivered job already got (through "
    "jobcast.resume); gateways answer from the ledger.",
)

# NOTE: the exchanges a worker publishes to are named apart from the queues behind them:
# RabbitMQ's permissions match a name whatever it names, so a worker's write on an exchange
# of the same name would also let it bind that queue (deploy/rabbitmq/definitions.json).
PROGRESS_EXCHANGE = Exchange(
    "jobcast.resume",
    ExchangeType.FANOUT,
    description="Workers ask here where a redelivered job resumes (a ProgressQuery, answered on "
    "direct reply-to); it routes to jobcast.progress. An exchange, not the default one, so a "
    "worker's broker user needs no write on the default exchange (which would reach "
    "jobcast.jobs).",
)

HANDBACK_EXCHANGE = Exchange(
    "jobcast.handback",
    ExchangeType.FANOUT,
    description="A stopping worker hands back a job it did not finish (the signed Job as it "
    "came, with x-jobcast-crashes); it routes to jobcast.handed-back.",
)

HANDBACK_QUEUE = Queue(
    "jobcast.handed-back",
    _dead_lettered(),
    description="Jobs handed back by stopping workers, bound to jobcast.handback: a gateway "
    "checks each (signed by a gateway, a Job, a crash count jobcast could have written) and "
    "puts it back on jobcast.jobs, acking once RabbitMQ confirmed it; anything else is "
    "dead-lettered with the reason. They wait here while no gateway runs.",
)

CANCEL_QUEUE = Queue(
    "jobcast.cancel",
    _dead_lettered(),
    description="Cancel a job over AMQP, as POST /jobs/{offset}/cancel: a CancelRequest; with "
    "reply_to and correlation_id the answer comes back.",
)

CONTROL_EXCHANGE = Exchange(
    "jobcast.control",
    ExchangeType.FANOUT,
    description="Control messages from the gateways to every worker at once (a CancelJob, "
    "signed): each worker binds an exclusive, auto-delete queue of its own "
    f"({CONTROL_QUEUE_PREFIX}<worker id>) while it runs. What a worker misses while it is "
    "away, it learns from the ledger.",
)

ALL_QUEUES = (
    JOBS_QUEUE,
    SCHEDULE_QUEUE,
    BATCH_QUEUE,
    LEDGER_QUEUE,
    DEAD_QUEUE,
    PROGRESS_QUEUE,
    CANCEL_QUEUE,
    HANDBACK_QUEUE,
)

ALL_EXCHANGES = (
    DEAD_LETTER_EXCHANGE,
    REPLIES_EXCHANGE,
    CONTROL_EXCHANGE,
    PROGRESS_EXCHANGE,
    HANDBACK_EXCHANGE,
)

BINDINGS = (
    (DEAD_QUEUE, DEAD_LETTER_EXCHANGE),
    (LEDGER_QUEUE, REPLIES_EXCHANGE),
    (PROGRESS_QUEUE, PROGRESS_EXCHANGE),
    (HANDBACK_QUEUE, HANDBACK_EXCHANGE),
)
"""(queue, exchange) pairs: each queue bound to the exchange with its routing_key."""


def control_queue(worker_id: str) -> Queue:
    """The queue a worker hears control messages on: its own, gone with its connection."""
    return Queue(f"{CONTROL_QUEUE_PREFIX}{worker_id}", {"x-queue-type": "classic"}, durable=False)


DIRECT_REPLY_TO = "amq.rabbitmq.reply-to"
"""RabbitMQ's pseudo-queue for RPC answers: no queue to declare or delete."""


REPLY_KEY = "reply.{offset}"
"""The routing key of a job's replies, `{offset}` its offset (reply_key() fills it in)."""


def reply_key(offset: int) -> str:
    """The routing key of every reply of job `offset`: bind it to follow one job."""
    return REPLY_KEY.format(offset=offset)
