"""The messages jobcast exchanges, over HTTP and AMQP alike."""

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from contracts.text import PRINTABLE

NAME_LENGTH = 200

# NOTE: both ledgers keep offsets as 64-bit and seqs as 32-bit integers. A larger number in a
# message or a URL is refused by the contract, never left to overflow inside a database driver.
MAX_OFFSET = 2**63 - 1
MAX_SEQ = 2**31 - 1

MAX_REPLY_BYTES = 1_048_576
"""The largest reply message (its JSON) jobcast stores; a step whose result would make a larger
one fails its job with that reason, and a larger message on jobcast.replies is dead-lettered."""

MAX_REQUEST_BYTES = 65_536
"""The largest job or job request message (its JSON): a valid one is far smaller. A larger one
is refused unparsed (HTTP 413; on the broker, dead-lettered as too large)."""

SEQ_WINDOW = 4096
"""How far ahead of a job's first missing seq a reply may be and still be stored.

Workers publish a job's replies without waiting for each confirm, and several gateways record
them independently, so a later seq may be stored before an earlier one; a reply further ahead
than this cannot come from a worker and is refused."""

MAX_TRACE_ENTRIES = 8
TRACE_TEXT_LENGTH = 512

# NOTE: printable as well as bounded: a NUL fails PostgreSQL and a lone surrogate UTF-8 (500s
# over HTTP, unanswered AMQP submissions); refused here, the sender hears why (contracts/text.py).
Name = Annotated[str, Field(min_length=1, max_length=NAME_LENGTH, pattern=r"\S"), PRINTABLE]


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


class JobRequest(BaseModel):
    """What a caller asks for: run pipeline `fn` for this deployment and framework."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "examples": [{"deployment": "Docker", "framework": "FastAPI", "fn": "default_fn"}]
        },
    )

    deployment: Annotated[Name, Field(examples=["Docker"])]
    framework: Annotated[Name, Field(examples=["FastAPI"])]
    fn: Annotated[Name, Field(examples=["default_fn"])]


class JobAccepted(BaseModel):
    """The answer to a schedule request: the offset that names the job from now on."""

    offset: Annotated[int, Field(ge=0, examples=[0])]


class ScheduleRejected(BaseModel):
    """The answer to an AMQP schedule request that could not be accepted."""

    error: str
    detail: str


class Job(BaseModel):
    """A job on `jobcast.jobs`: the request and the offset it was given."""

    model_config = ConfigDict(extra="forbid")

    offset: Annotated[int, Field(ge=0, le=MAX_OFFSET)]
    request: JobRequest
    scheduled_at: datetime = Field(default_factory=utcnow)
    trace: dict[
        Annotated[str, Field(max_length=TRACE_TEXT_LENGTH)],
        Annotated[str, Field(max_length=TRACE_TEXT_LENGTH)],
    ] = Field(
        default_factory=dict,
        max_length=MAX_TRACE_ENTRIES,
        description="W3C trace context carried from the scheduler.",
    )


class ReplyKind(StrEnum):
    """What a reply says: a step's result, the end of the job, or why it failed."""

    RESULT = "result"
    DONE = "done"
    ERROR = "error"


class Reply(BaseModel):
    """One step's outcome, published on `jobcast.replies` with key `reply.<offset>`.

    `(offset, seq)` names a reply uniquely: a subscriber that sees a pair twice
    (after a redelivery) can drop the copy.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    offset: Annotated[int, Field(ge=0, le=MAX_OFFSET)]
    seq: Annotated[int, Field(ge=0, le=MAX_SEQ)]
    kind: ReplyKind
    value: JsonValue
    produced_at: datetime = Field(default_factory=utcnow)

    @property
    def is_final(self) -> bool:
        """True for the reply that ends the job (`done` or `error`)."""
        return self.kind is not ReplyKind.RESULT


class JobState(StrEnum):
    """Where a job is in its life."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"

    @property
    def is_final(self) -> bool:
        """True once the job has ended: nothing about it changes any more."""
        return self in (JobState.DONE, JobState.FAILED)


class JobRecord(BaseModel):
    """A job as the ledger knows it: `GET /jobs/{offset}`."""

    offset: int
    state: JobState
    request: JobRequest
    replies: list[Reply]
    error: str | None = None
    created_at: datetime
    updated_at: datetime


class ProgressQuery(BaseModel):
    """A worker's question to the query side: what is recorded for this offset?"""

    offset: Annotated[int, Field(ge=0, le=MAX_OFFSET)]


class ProgressRejected(BaseModel):
    """The answer to a progress question that has none (a worker then starts the job over)."""

    error: str
    detail: str


class Progress(BaseModel):
    """The last recorded step of a job, so a redelivered job resumes after it."""

    offset: Annotated[int, Field(ge=0, le=MAX_OFFSET)]
    next_seq: int = Field(
        ge=0, le=MAX_SEQ + 1, description="The seq of the first step not yet recorded."
    )
    previous: JsonValue = Field(default=None, description="The last recorded step's value.")
    finished: bool = Field(default=False, description="A done or error reply is recorded.")
