"""What the ledger keeps to steer jobs: cancel requests and delayed starts, on both databases.

A delayed job is stored `scheduled` with its `due_at`; a gateway's release loop claims the due
ones (moving `due_at` a lease ahead, so no other gateway claims them meanwhile), publishes them,
and only once RabbitMQ confirmed marks them `queued`. A gateway that dies between claiming and
marking leaves the job to be claimed again when the lease runs out: released at least once,
and exactly once unless a gateway dies in that moment.
"""

from datetime import UTC, datetime

RELEASE_LEASE_SECONDS = 30.0
"""How long a claimed delayed job is left to the gateway that claimed it before another may
claim it again (its publish was not confirmed, or the gateway died)."""


def due_text(moment: datetime) -> str:
    """A time as the SQLite ledger keeps due_at: ISO 8601 in UTC with microseconds always
    written, so text order is time order."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")
