"""Signing jobs and replies, so that only gateways schedule jobs and only workers write results.

Anyone allowed to publish on the broker could otherwise put a job on jobcast.jobs or a reply on
jobcast.replies. Gateways sign every job and workers every reply with a key they share
(JOBCAST_SIGNING_KEY); a worker runs only signed jobs and the recorder stores only signed
replies. An HMAC rather than RabbitMQ's validated `user_id`: it holds whatever users the broker
has (also one `guest` for everything), and it covers the body, not just the sender.
"""

import hashlib
import hmac

from pydantic import ValidationError

from contracts.errors import DeadLetterReason, RefusedMessageError, describe
from contracts.headers import HEADER_SIGNATURE
from contracts.messages import MAX_REQUEST_BYTES, Job

DEVELOPMENT_KEY = "jobcast-development-key-not-secret"
"""The key used when none is configured: fine on one machine, never in production (it is
public); processes refuse it against a broker that is not on the loopback interface."""


class Signer:
    """Signs and verifies message bodies with one key."""

    def __init__(self, key: str) -> None:
        self._key = key.encode()

    def sign(self, body: bytes) -> str:
        """The signature of `body`, for the x-jobcast-signature header (contracts/headers.py)."""
        return hmac.new(self._key, body, hashlib.sha256).hexdigest()

    def verify(self, body: bytes, signature: object) -> bool:
        """True if `signature` (a header value, of any type) is the signature of `body`."""
        # NOTE: compared as bytes: hmac.compare_digest raises TypeError for a str with a
        # non-ASCII character, and a header from the wire may hold any text (or bytes that are
        # not UTF-8); that error took the recorder's whole batch back to the queue, again and
        # again, with the one forged reply in it.
        if isinstance(signature, str):
            signature = signature.encode("utf-8", "surrogatepass")
        if not isinstance(signature, bytes):
            return False
        return hmac.compare_digest(self.sign(body).encode(), signature)


def signed_job(body: bytes, signature: object, signer: Signer) -> Job:
    """The job a message carries; RefusedMessageError (with the reason) if it is too large,
    not signed by a gateway, or not a Job. Checked in that order: nothing unsigned is parsed."""
    if len(body) > MAX_REQUEST_BYTES:
        raise RefusedMessageError(
            DeadLetterReason.TOO_LARGE, f"too large: a job of {len(body)} bytes"
        )
    if not signer.verify(body, signature):
        why = "no" if signature is None else "a wrong"
        raise RefusedMessageError(
            DeadLetterReason.UNSIGNED, f"unsigned job: {why} {HEADER_SIGNATURE}"
        )
    try:
        return Job.model_validate_json(body)
    except ValidationError as exc:
        raise RefusedMessageError(
            DeadLetterReason.INVALID_JOB, f"invalid job: {describe(exc)}"
        ) from None
