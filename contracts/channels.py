"""Which message travels where: for every queue and exchange of the topology, what jobcast
sends or receives on it and which process does, whichever library carries it.

The AsyncAPI document (jobcast/asyncapi.py) is generated from this table, the topology and the
models; nothing else repeats it.
"""

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel

from contracts.batches import BatchAccepted, BatchRequest
from contracts.control import CancelAccepted, CancelJob, CancelRejected, CancelRequest
from contracts.messages import (
    Job,
    JobAccepted,
    JobRequest,
    Progress,
    ProgressQuery,
    ProgressRejected,
    Reply,
    ScheduleRejected,
)
from contracts.topology import (
    BATCH_QUEUE,
    CANCEL_QUEUE,
    CONTROL_EXCHANGE,
    DEAD_LETTER_BODY_LIMIT,
    DEAD_LETTER_EXCHANGE,
    HANDBACK_EXCHANGE,
    HANDBACK_QUEUE,
    JOBS_QUEUE,
    LEDGER_QUEUE,
    PROGRESS_EXCHANGE,
    PROGRESS_QUEUE,
    REPLIES_EXCHANGE,
    REPLY_KEY,
    SCHEDULE_QUEUE,
    Exchange,
    Queue,
)


@dataclass(frozen=True)
class Opaque:
    """A message whose body jobcast does not define."""

    name: str
    description: str


Message = type[BaseModel] | Opaque

DEAD_LETTER = Opaque(
    "DeadLetter",
    "A message given up on, as it came: its body (jobcast's own copies keep at most "
    f"{DEAD_LETTER_BODY_LIMIT} bytes of it) and its headers, with jobcast's reason added (or "
    "RabbitMQ's x-death, when the broker dead-lettered it).",
)

SIGNED = (Job, Reply, CancelJob)
"""Messages only a gateway or worker may produce: a body without its signature is refused."""


@dataclass(frozen=True)
class Operation:
    """What jobcast does on a queue or exchange: `send` (publish) or `receive` (consume)
    `messages`; `who` says which process, and why. With `answers` the operation is a request
    and response: the answer goes to the request's reply_to, with its correlation_id."""

    action: Literal["send", "receive"]
    on: Queue | Exchange
    messages: tuple[Message, ...]
    who: str
    routing_key: str = ""
    answers: tuple[type[BaseModel], ...] = ()


OPERATIONS = (
    Operation(
        "receive",
        SCHEDULE_QUEUE,
        (JobRequest,),
        "Gateways schedule each request, as POST /schedule does.",
        answers=(JobAccepted, ScheduleRejected),
    ),
    Operation(
        "receive",
        BATCH_QUEUE,
        (BatchRequest,),
        "Gateways schedule each batch, as POST /schedule/batch does: one ledger transaction, "
        "one burst of confirmed publishes, all or nothing.",
        answers=(BatchAccepted, ScheduleRejected),
    ),
    Operation(
        "send",
        JOBS_QUEUE,
        (Job,),
        "Gateways publish each scheduled job, persistent and signed, with publisher confirms, "
        "and put back each job a worker handed back (checked, as it came).",
    ),
    Operation(
        "receive",
        JOBS_QUEUE,
        (Job,),
        "Workers run the job's pipeline, publishing a Reply per step, and ack after the last.",
    ),
    Operation(
        "send",
        HANDBACK_EXCHANGE,
        (Job,),
        "A stopping worker hands back a job it did not finish: the signed Job as it came, "
        "with x-jobcast-crashes (its crashes so far), persistent, with publisher confirms; then "
        "it acks the job.",
    ),
    Operation(
        "receive",
        HANDBACK_QUEUE,
        (Job,),
        "Gateways check each hand-back (signed by a gateway, a Job, a crash count from 0 to the "
        "delivery limit), publish it on jobcast.jobs and ack it once confirmed; anything else "
        "is dead-lettered with the reason.",
    ),
    Operation(
        "send",
        REPLIES_EXCHANGE,
        (Reply,),
        "Workers publish each step's outcome, signed: results, then done or error.",
        routing_key=REPLY_KEY,
    ),
    Operation(
        "receive",
        LEDGER_QUEUE,
        (Reply,),
        "Gateways store each reply in the ledger and ack it once committed.",
    ),
    Operation(
        "send",
        PROGRESS_EXCHANGE,
        (ProgressQuery,),
        "Workers ask before resuming a redelivered job.",
        answers=(Progress, ProgressRejected),
    ),
    Operation(
        "receive",
        PROGRESS_QUEUE,
        (ProgressQuery,),
        "Gateways answer from the ledger.",
        answers=(Progress, ProgressRejected),
    ),
    Operation(
        "receive",
        CANCEL_QUEUE,
        (CancelRequest,),
        "Gateways cancel the job, as POST /jobs/{offset}/cancel does: recorded in the ledger, "
        "then announced on jobcast.control.",
        answers=(CancelAccepted, CancelRejected),
    ),
    Operation(
        "send",
        CONTROL_EXCHANGE,
        (CancelJob,),
        "Gateways announce each accepted cancel, signed, with publisher confirms.",
    ),
    Operation(
        "receive",
        CONTROL_EXCHANGE,
        (CancelJob,),
        "Every worker, on a queue of its own: the job's running step sees ctx.cancelled, and "
        "no further step of it runs.",
    ),
    Operation(
        "send",
        DEAD_LETTER_EXCHANGE,
        (DEAD_LETTER,),
        "Workers and gateways copy a message they give up on here, then settle the original.",
    ),
)
"""Every way a message travels between jobcast's processes and the services around them."""
