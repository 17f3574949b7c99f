"""The messages jobcast exchanges, over HTTP and AMQP alike."""

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, JsonValue, model_validator

from contracts.text import PRINTABLE

NAME_LENGTH = 200

# NOTE: both ledgers keep offsets as 64-bit and seqs as 32-bit integers. A larger number in a
# message or a URL is refused by the contract, never left to overflow inside a database driver.
MAX_OFFSET = 2**63 - 1
MAX_SEQ = 2**31 - 1

MAX_REPLY_BYTES = 1_048_576
"""The largest reply message (its JSON) jobcast stores; a step whose result would make a larger
one fails its job with that reason, and a larger message on jobcast.replies is dead-lettered."""

MAX_RESULT_BYTES = MAX_REPLY_BYTES - 512
"""The largest step result (its JSON) a worker publishes: the reply's other fields fit in the
rest. JOBCAST_MAX_RESULT_BYTES may lower it; a larger result fails its job with the reason."""

MAX_STEPS = 10_000
"""The most steps a pipeline may have, so a job has at most MAX_STEPS + 1 replies (its steps
and its final one); a reply with a higher seq is refused by the contract."""

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

MAX_DELAY_SECONDS = 30 * 24 * 3600
"""The furthest ahead a delayed job may start (run_at, delay_seconds): 30 days."""
CLOCK_SKEW_SECONDS = 60
"""How far in the past a run_at may be (a caller's clock a little behind): it starts at once."""

MAX_TAGS = 8
TAG_LENGTH = 64
Tag = Annotated[
    str, Field(min_length=1, max_length=TAG_LENGTH, pattern=r"^[A-Za-z0-9_.:/-]+$", examples=["eu"])
]
"""A label a caller puts on a job to find it again (GET /jobs?tag=, GET /jobs/stream?tag=)."""


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
    # NOTE: left out of the JSON when empty, so a request without tags is the same message
    # (on jobcast.jobs, in the ledger, in every answer) as before tags existed, and a worker
    # or gateway that does not know them yet still takes it.
    tags: list[Tag] = Field(
        default_factory=list,
        max_length=MAX_TAGS,
        exclude_if=lambda tags: not tags,
        description="Labels to find the job by (at most 8, each 1-64 of A-Z a-z 0-9 _ . : / -).",
    )
    # NOTE: left out of the JSON when unset, like tags: an undelayed request is the same
    # message as before delays existed. How far ahead and behind they may point is checked
    # when the job is scheduled (contracts/control.py, due_at), not here: a worker reads the
    # request of a job released long after its run_at.
    run_at: AwareDatetime | None = Field(
        default=None,
        exclude_if=lambda value: value is None,
        description="Start the job at this time (with a timezone), not at once; at most "
        f"{MAX_DELAY_SECONDS} seconds ahead, at most {CLOCK_SKEW_SECONDS} seconds behind.",
    )
    delay_seconds: float | None = Field(
        default=None,
        ge=0,
        le=MAX_DELAY_SECONDS,
        allow_inf_nan=False,
        exclude_if=lambda value: value is None,
        description="Start the job this many seconds from now, not at once.",
    )

    @model_validator(mode="after")
    def _one_start(self) -> Self:
        if self.run_at is not None and self.delay_seconds is not None:
            raise ValueError("give run_at or delay_seconds, not both")
        return self

    def __hash__(self) -> int:
        # NOTE: frozen, so hashable as it was before it had a list (tags): by its JSON, which
        # equal requests share
        return hash(self.model_dump_json())


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
    """What a reply says: a step's result, the end of the job, why it failed, or how far the
    running step got (`progress`)."""

    RESULT = "result"
    DONE = "done"
    ERROR = "error"
    CANCELLED = "cancelled"
    """The last reply of a job cancelled on request (POST /jobs/{offset}/cancel)."""
    PROGRESS = "progress"
    """How far the running step got (`StepProgress`): not a step and not final, never among
    the job's results; its seq is the seq of the step it reports on."""


PROGRESS_MESSAGE_LENGTH = 200
MAX_PROGRESS = 2**53
"""The largest progress number: every JSON reader holds integers up to it exactly."""

ProgressNumber = (
    Annotated[int, Field(strict=True, ge=0, le=MAX_PROGRESS)]
    | Annotated[float, Field(strict=True, ge=0, le=MAX_PROGRESS, allow_inf_nan=False)]
)


class StepProgress(BaseModel):
    """The value of a `progress` reply: how far the running step got, e.g. 40 of 100 files."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={"examples": [{"current": 40, "total": 100, "message": "resizing"}]},
    )

    current: ProgressNumber
    total: ProgressNumber | None = Field(default=None, description="None: unknown.")
    message: Annotated[str, Field(max_length=PROGRESS_MESSAGE_LENGTH), PRINTABLE] | None = None


class Reply(BaseModel):
    """One step's outcome, published on `jobcast.replies` with key `reply.<offset>`.

    `(offset, seq)` names a reply uniquely: a subscriber that sees a pair twice
    (after a redelivery) can drop the copy. Except `progress` (tell it by `kind`): no step but
    how far the running step (its `seq`) got, as often as a step reports, the newest
    `produced_at` the latest; never among the job's results and never after its step's result.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    offset: Annotated[int, Field(ge=0, le=MAX_OFFSET)]
    seq: Annotated[int, Field(ge=0, le=MAX_STEPS)]
    kind: ReplyKind
    value: JsonValue = Field(
        description="The step's result; for `progress`, a StepProgress: "
        '`{"current": n, "total": n|null, "message": str|null}`.'
    )
    produced_at: datetime = Field(default_factory=utcnow)

    @model_validator(mode="after")
    def _progress_shape(self) -> Self:
        # NOTE: a progress value is shown to every follower and kept in the ledger: bounded
        # like any other sender's data, so a NaN, a huge message or another shape is refused.
        if self.kind is ReplyKind.PROGRESS:
            StepProgress.model_validate(self.value)
        return self

    @property
    def is_final(self) -> bool:
        """True for the reply that ends the job (`done`, `error` or `cancelled`)."""
        return self.kind not in (ReplyKind.RESULT, ReplyKind.PROGRESS)


class JobState(StrEnum):
    """Where a job is in its life."""

    SCHEDULED = "scheduled"
    """A delayed job (`run_at`, `delay_seconds`) waiting in the ledger for its time."""
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        """True once the job has ended: nothing about it changes any more."""
        return self in (JobState.DONE, JobState.FAILED, JobState.CANCELLED)


class ProgressReport(StepProgress):
    """The latest progress of a job, as GET /jobs/{offset} shows it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "current": 40,
                    "total": 100,
                    "message": "resizing",
                    "seq": 1,
                    "produced_at": "2026-01-01T00:00:02Z",
                }
            ]
        }
    )

    seq: Annotated[int, Field(ge=0, le=MAX_SEQ, description="The step it reports on.")]
    produced_at: datetime

    @classmethod
    def of(cls, reply: Reply) -> "ProgressReport":
        """The report a `progress` reply makes."""
        value = StepProgress.model_validate(reply.value)
        return cls(seq=reply.seq, produced_at=reply.produced_at, **value.model_dump())


class JobRecord(BaseModel):
    """A job as the ledger knows it: `GET /jobs/{offset}`."""

    offset: int
    state: JobState
    request: JobRequest
    replies: list[Reply]
    error: str | None = None
    created_at: datetime
    updated_at: datetime
    progress: ProgressReport | None = Field(
        default=None, description="The latest progress a step reported (None: none yet)."
    )
    cancel_requested: bool = Field(
        default=False, description="Cancelling was asked for: the job ends `cancelled`."
    )
    due_at: datetime | None = Field(
        default=None, description="When a `scheduled` (delayed) job is released to the workers."
    )


MAX_PENDING_CANCELS = 10_000
"""At most this many offsets in one answer's `pending_cancels`; with more, none are listed
and the worker keeps asking job by job."""


class ProgressQuery(BaseModel):
    """A worker's question to the query side: what is recorded for this offset?"""

    offset: Annotated[int, Field(ge=0, le=MAX_OFFSET)]
    pending_cancels: bool = Field(
        default=False,
        description="Also list every unfinished job whose cancel was requested: a worker that "
        "has just begun hearing cancels asks once, instead of once per job older than that.",
    )


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
    finished: bool = Field(default=False, description="A final reply is recorded.")
    cancel_requested: bool = Field(
        default=False, description="The job was cancelled: run no further step, end it."
    )
    pending_cancels: list[Annotated[int, Field(ge=0, le=MAX_OFFSET)]] | None = Field(
        default=None,
        max_length=MAX_PENDING_CANCELS,
        description="When asked: the offsets of every unfinished job whose cancel was requested "
        f"when this answer was read (None: not asked, or more than {MAX_PENDING_CANCELS}).",
    )
