"""What every jobcast part agrees on: the messages, the errors and the broker topology."""

from contracts.errors import (
    BrokerUnavailableError,
    IdempotencyConflictError,
    InvalidMessageError,
    JobcastError,
    LedgerUnavailableError,
    PermanentStepError,
    UnavailableError,
    UnknownOffsetError,
    UnknownPipelineError,
)
from contracts.messages import (
    Job,
    JobAccepted,
    JobRecord,
    JobRequest,
    JobState,
    Progress,
    ProgressQuery,
    ProgressRejected,
    Reply,
    ReplyKind,
    ScheduleRejected,
)

__all__ = [
    "BrokerUnavailableError",
    "IdempotencyConflictError",
    "InvalidMessageError",
    "Job",
    "JobAccepted",
    "JobRecord",
    "JobRequest",
    "JobState",
    "JobcastError",
    "LedgerUnavailableError",
    "PermanentStepError",
    "Progress",
    "ProgressQuery",
    "ProgressRejected",
    "Reply",
    "ReplyKind",
    "ScheduleRejected",
    "UnavailableError",
    "UnknownOffsetError",
    "UnknownPipelineError",
]
