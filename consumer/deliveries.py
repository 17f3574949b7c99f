"""Counting a job's crashes across deliveries: a clean hand-back is not a crash.

On a quorum queue every `nack(requeue=True)` raises `x-delivery-count`, so a job handed back by
a stopping worker would look like one whose worker died. A stopping worker therefore puts the
job back as a new message carrying the crashes counted so far (`x-jobcast-crashes`), and the
next worker adds RabbitMQ's count of *this* message's failed deliveries to it.

Both headers come from the wire: anyone who may publish on jobcast.jobs may set them. A value
jobcast could not have written (not an int, a bool, negative) counts as 0, which is no more
than leaving the header out, and a count is never more than the cap, so no header can crash
the worker, lower the count below what RabbitMQ counted, or grow without bound.
"""

import logging
from collections.abc import Mapping

logger = logging.getLogger(__name__)

HEADER_CRASHES = "x-jobcast-crashes"
"""On a job jobcast handed back: its crashes so far. Present: ask where the job resumes."""

DELIVERY_COUNT = "x-delivery-count"
"""RabbitMQ's (quorum queues): failed deliveries of this message, 0 or absent on the first."""

_BROKER_HEADERS = frozenset(
    {
        DELIVERY_COUNT,
        "x-death",
        "x-first-death-exchange",
        "x-first-death-queue",
        "x-first-death-reason",
        "x-last-death-exchange",
        "x-last-death-queue",
        "x-last-death-reason",
    }
)
"""What RabbitMQ writes about one message's own history; a new copy starts without it."""

Headers = Mapping[str, object]


def crashes(headers: Headers | None, cap: int) -> int:
    """Crashes of this job so far: carried over from hand-backs plus this message's failed
    deliveries, at most `cap` (at the cap the job is failed, so more would say nothing)."""
    found = headers or {}
    return min(_count(found, HEADER_CRASHES) + _count(found, DELIVERY_COUNT), max(cap, 0))


def delivery_count(headers: Headers | None) -> int:
    """RabbitMQ's x-delivery-count of this message: 0 on the first delivery (or if malformed)."""
    return _count(headers or {}, DELIVERY_COUNT)


def handed_back(headers: Headers | None) -> bool:
    """Whether jobcast put this job back (a new message, not `redelivered`): it may have run."""
    return HEADER_CRASHES in (headers or {})


def hand_back_headers(headers: Headers | None, crashes_so_far: int) -> dict[str, object]:
    """The headers of a handed-back job's new message: the original's (its signature, its
    trace) without RabbitMQ's delivery history, plus the crashes counted so far."""
    kept = {k: v for k, v in (headers or {}).items() if k not in _BROKER_HEADERS}
    return {**kept, HEADER_CRASHES: crashes_so_far}


def _count(headers: Headers, name: str) -> int:
    value = headers.get(name)
    if value is None:
        return 0
    # NOTE: `type(...) is int`, not isinstance: True is an int to Python, not a count to us.
    if type(value) is not int or value < 0:
        logger.warning("ignoring %s=%r: not a count", name, value)
        return 0
    return value
