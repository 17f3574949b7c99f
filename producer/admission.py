"""What a submission over HTTP passes besides the scheduler: the key's rate limit, and with
JOBCAST_AUTH=on a read token for what it scheduled (both off by default, the seed's answer)."""

from collections.abc import Callable
from dataclasses import dataclass

from contracts.batches import BatchAccepted
from contracts.messages import JobAccepted
from contracts.read_tokens import BatchAcceptedWithToken, JobAcceptedWithToken
from producer.rate_limit import RateLimiter

MintReadToken = Callable[..., str]
"""`mint(owner, offsets=[...])` or `mint(owner, batch=...)`: a read token (jobcast/http)."""


@dataclass(frozen=True)
class Admission:
    """The rate limiter (None: no limit) and the read-token minter (None: auth off)."""

    limiter: RateLimiter | None = None
    mint: MintReadToken | None = None

    def admit(self, owner: str | None, cost: int = 1) -> None:
        """RateLimitedError when `owner` must wait before submitting `cost` jobs more."""
        if self.limiter is not None:
            self.limiter.check(owner, cost)

    def job(self, owner: str | None, accepted: JobAccepted) -> JobAccepted:
        """`accepted`, with a read token for its offset when tokens are on."""
        if self.mint is None or owner is None:
            return accepted
        token = self.mint(owner, offsets=[accepted.offset])
        return JobAcceptedWithToken(offset=accepted.offset, read_token=token)

    def batch(self, owner: str | None, batch: str | None, accepted: BatchAccepted) -> BatchAccepted:
        """`accepted`, with a read token for the batch (by name) or its offsets."""
        if self.mint is None or owner is None:
            return accepted
        if batch is not None:
            token = self.mint(owner, batch=batch)
        else:
            token = self.mint(owner, offsets=accepted.offsets)
        fields = accepted.model_dump()
        return BatchAcceptedWithToken(**fields, read_token=token)


NO_ADMISSION = Admission()
"""No limit, no tokens: the seed's contract."""
