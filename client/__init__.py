"""jobcast's client library: schedule jobs and follow their results from other services.

Depends on `contracts` only: a service that imports it needs none of jobcast's processes.
The contract types and errors it hands out are re-exported here for convenience.
"""

from client.async_client import DEFAULT_URL, JobcastClient
from client.errors import GatewayUnreachableError, ScheduleRejectedError
from client.sync_client import SyncJobcastClient
from contracts import (
    BrokerUnavailableError,
    JobcastError,
    JobRecord,
    JobRequest,
    JobState,
    Reply,
    ReplyKind,
    UnavailableError,
    UnknownOffsetError,
)

__all__ = [
    "DEFAULT_URL",
    "BrokerUnavailableError",
    "GatewayUnreachableError",
    "JobRecord",
    "JobRequest",
    "JobState",
    "JobcastClient",
    "JobcastError",
    "Reply",
    "ReplyKind",
    "ScheduleRejectedError",
    "SyncJobcastClient",
    "UnavailableError",
    "UnknownOffsetError",
]
