"""jobcast's client library: schedule jobs and follow their results from other services.

Depends on `contracts` only: a service that imports it needs none of jobcast's processes.
"""

from client.async_client import DEFAULT_URL, JobcastClient
from client.errors import GatewayUnreachableError, ScheduleRejectedError
from client.sync_client import SyncJobcastClient

__all__ = [
    "DEFAULT_URL",
    "GatewayUnreachableError",
    "JobcastClient",
    "ScheduleRejectedError",
    "SyncJobcastClient",
]
