"""A job handed back by a stopping worker, as a gateway checks it before it is a job again.

A worker's broker user may not publish on jobcast.jobs (deploy/rabbitmq/definitions.json):
it publishes the job it did not finish on jobcast.handback, and a gateway puts it back on
jobcast.jobs only if a gateway signed it, it is a Job, and its crash count is one jobcast could
have written. Whoever else may publish there is refused, with the reason.
"""

from collections.abc import Mapping

from contracts.errors import DeadLetterReason, RefusedMessageError
from contracts.headers import BROKER_HISTORY, HEADER_CRASHES, HEADER_SIGNATURE
from contracts.signing import Signer, signed_job
from contracts.topology import DELIVERY_LIMIT


def checked_hand_back(
    body: bytes, headers: Mapping[str, object] | None, signer: Signer
) -> dict[str, object]:
    """The headers the job goes back onto jobcast.jobs with: the hand-back's own (signature,
    trace, crash count) without RabbitMQ's history of the hand-back message. RefusedMessageError
    with the reason if it is no job a gateway signed, or its crash count is missing or could
    not have been written by jobcast (not an int, negative, over the delivery limit)."""
    found = dict(headers or {})
    signed_job(body, found.get(HEADER_SIGNATURE), signer)
    crashes = found.get(HEADER_CRASHES)
    # NOTE: `type(...) is int`, not isinstance: True is an int to Python, not a count to us.
    if type(crashes) is not int or not 0 <= crashes <= DELIVERY_LIMIT:
        shown = "missing" if crashes is None else f"{crashes!r}"[:40]
        raise RefusedMessageError(
            DeadLetterReason.INVALID_HAND_BACK,
            f"not a hand-back: {HEADER_CRASHES} is {shown}, not a count from 0 to {DELIVERY_LIMIT}",
        )
    return {k: v for k, v in found.items() if k not in BROKER_HISTORY}
