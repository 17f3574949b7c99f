"""Counting a job's crashes across deliveries: a clean hand-back is not a crash.

On a quorum queue every `nack(requeue=True)` raises `x-delivery-count`, so a job handed back by
a stopping worker would look like one whose worker died. A stopping worker therefore puts the
job back as a new message carrying the crashes counted so far (`x-jobcast-crashes`), and the
next worker adds RabbitMQ's count of *this* message's failed deliveries to it.

Both headers come from the wire: anyone who may publish on jobcast.jobs may set them (a
gateway's user; a worker's hand-back gets there only through a gateway's checks,
contracts/handbacks.py). A value jobcast could not have written (not an int, a bool,
negative) counts as 0, which is no more than leaving the header out, and a count is never
more than the cap, so no header can crash the worker, lower the count below what RabbitMQ
counted, or grow without bound.
"""

from contracts.headers import BROKER_HISTORY, DELIVERY_COUNT, HEADER_CRASHES
from messaging.connection import Headers, header_count, writable_headers


def crashes(headers: Headers | None, cap: int) -> int:
    """Crashes of this job so far: carried over from hand-backs plus this message's failed
    deliveries, at most `cap` (at the cap the job is failed, so more would say nothing)."""
    found = headers or {}
    return min(
        header_count(found, HEADER_CRASHES) + header_count(found, DELIVERY_COUNT), max(cap, 0)
    )


def handed_back(headers: Headers | None) -> bool:
    """Whether jobcast put this job back (a new message, not `redelivered`): it may have run."""
    return HEADER_CRASHES in (headers or {})


def hand_back_headers(headers: Headers | None, crashes_so_far: int) -> dict[str, object]:
    """The headers of a handed-back job's new message: the original's (its signature, its
    trace) without RabbitMQ's delivery history, plus the crashes counted so far."""
    kept = {k: v for k, v in writable_headers(headers).items() if k not in BROKER_HISTORY}
    return {**kept, HEADER_CRASHES: crashes_so_far}
