"""jobcast's exceptions.

Plain code raises these; the HTTP and broker edges map them (see the README's error table)::

    JobcastError
    ├── UnknownOffsetError        the offset was never handed out            HTTP 404
    │   └── OffsetExpiredError    its job was purged (retention, DELETE)     HTTP 410
    ├── JobNotFinishedError       DELETE of a job that has not ended         HTTP 409
    ├── IdempotencyConflictError  a key was reused for another request       HTTP 409
    ├── InvalidMessageError       a message is not JSON or not the schema    dead-lettered at once
    │   └── RefusedMessageError   refused unread, with its DeadLetterReason  dead-lettered at once
    ├── LedgerRejectedError       the database refused this one write        dead-lettered at once
    ├── UnknownPipelineError      the job's fn names no pipeline             job fails at once
    ├── PermanentStepError        a step says retrying cannot help           job fails at once
    ├── ConfigurationError        a setting is missing or unsafe             the process exits
    └── UnavailableError          a dependency is down; try again later      HTTP 503
        ├── BrokerUnavailableError    RabbitMQ did not confirm in time
        │   └── PublishInDoubtError   sent, but never confirmed: it may be queued
        └── LedgerUnavailableError    the database did not answer

A message jobcast gives up on goes to jobcast.dead with a `DeadLetterReason`.
"""

from enum import StrEnum

from pydantic import ValidationError


def describe(exc: ValidationError) -> str:
    """A validation error in one line: where, what, and how many more."""
    errors = exc.errors()
    first = errors[0]
    where = ".".join(str(p) for p in first["loc"]) or "body"
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first['msg']}{more}"


class JobcastError(Exception):
    """Base class of every error jobcast raises on purpose."""


class UnknownOffsetError(JobcastError):
    """No job was ever handed this offset."""

    def __init__(self, offset: int) -> None:
        super().__init__(f"offset {offset} was never handed out")
        self.offset = offset


class OffsetExpiredError(UnknownOffsetError):
    """The offset was handed out, but its job was purged (JOBCAST_RETENTION or DELETE)."""

    def __init__(self, offset: int) -> None:
        JobcastError.__init__(self, f"offset {offset} expired: its job was purged")
        self.offset = offset


class JobNotFinishedError(JobcastError):
    """Only a finished job can be deleted."""

    def __init__(self, offset: int) -> None:
        super().__init__(f"job {offset} has not finished; only a finished job can be deleted")
        self.offset = offset


class IdempotencyConflictError(JobcastError):
    """An idempotency key was sent again with a different request."""

    def __init__(self, key: str, offset: int) -> None:
        super().__init__(f"idempotency key {key!r} was used for another request (offset {offset})")
        self.key = key
        self.offset = offset


class InvalidMessageError(JobcastError):
    """A broker message that is not valid JSON or does not match its schema (poison)."""


class RefusedMessageError(InvalidMessageError):
    """A message refused before it is used (too large, unsigned, not its schema): `reason` is
    its dead-letter reason, the message says why in words."""

    def __init__(self, reason: "DeadLetterReason", detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class LedgerRejectedError(JobcastError):
    """The ledger refused one write for what it holds (not an outage): retrying cannot help."""


class UnknownPipelineError(JobcastError):
    """The job names a pipeline (`fn`) that no worker knows."""

    def __init__(self, fn: str, known: list[str]) -> None:
        super().__init__(f"unknown fn {fn!r}; known pipelines: {', '.join(known) or 'none'}")
        self.fn = fn


class PermanentStepError(JobcastError):
    """Raised by a step to fail its job at once, without retries."""


class ConfigurationError(JobcastError):
    """A setting is missing or unsafe: the process refuses to start, saying which."""


class UnavailableError(JobcastError):
    """A dependency (broker or database) cannot be reached now; the caller may retry."""


class BrokerUnavailableError(UnavailableError):
    """RabbitMQ is unreachable or did not confirm a publish in time."""


class PublishInDoubtError(BrokerUnavailableError):
    """A message went to RabbitMQ but its confirm never came (the connection or the node was
    lost, or the deadline passed): it may be queued, or not."""


class LedgerUnavailableError(UnavailableError):
    """The ledger database is unreachable or refused a write."""


class DeadLetterReason(StrEnum):
    """Why jobcast moved a message to jobcast.dead: its x-jobcast-reason-code header and the
    `reason` label of jobcast_dead_lettered_total (x-jobcast-reason says it in words)."""

    INVALID_JOB = "invalid_job"
    """A job that is not JSON or not a Job."""
    INVALID_REQUEST = "invalid_request"
    """A submission that is not a JobRequest, or whose message_id is no idempotency key."""
    INVALID_REPLY = "invalid_reply"
    """A message on jobcast.ledger that is not JSON or not a Reply."""
    TOO_LARGE = "too_large"
    """Larger than any valid message of its queue; refused unread."""
    UNSIGNED = "unsigned"
    """A job no gateway signed or a reply no worker signed."""
    MISROUTED = "misrouted"
    """A reply whose routing key names another offset than its body."""
    UNKNOWN_PIPELINE = "unknown_pipeline"
    """A job whose fn names no pipeline this worker knows; the job failed."""
    STEP_FAILED = "step_failed"
    """A step failed for good; the job failed."""
    CRASH_LOOP = "crash_loop"
    """The job took its worker down at every delivery up to the cap; the job failed."""
    IDEMPOTENCY_CONFLICT = "idempotency_conflict"
    """A submission reusing an idempotency key for another request."""
    UNKNOWN_OFFSET = "unknown_offset"
    """A reply for an offset never handed out."""
    REFUSED_REPLY = "refused_reply"
    """A reply that cannot be true of its job (after the final one, a second final, ...)."""
    LEDGER_REFUSED = "ledger_refused"
    """A reply the database refused to store (not an outage)."""
    INVALID_HAND_BACK = "invalid_hand_back"
    """A job handed back on jobcast.handback without a crash count jobcast could have written
    (x-jobcast-crashes missing, not a count, or over the broker's delivery limit)."""
    UNAUTHORIZED = "unauthorized"
    """A submission with JOBCAST_AUTH=on whose x-jobcast-key is missing, unknown or revoked."""
