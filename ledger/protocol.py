"""The Ledger protocol: what every ledger does, whatever database holds it."""

from collections.abc import Sequence
from typing import Protocol

from contracts import JobRecord, JobRequest, Reply
from ledger.rules import StoreOutcome


class Ledger(Protocol):
    """Durable record of jobs and replies. Every write is committed before it returns."""

    async def open(self) -> None:
        """Connect and create the schema if needed."""

    async def close(self) -> None:
        """Release connections."""

    async def ping(self) -> None:
        """Raise LedgerUnavailableError unless a write would succeed now."""

    async def create_job(
        self, request: JobRequest, idempotency_key: str | None = None
    ) -> tuple[int, bool]:
        """Allocate the next offset and record the job as queued.

        Returns `(offset, created)`; with a known idempotency key, the earlier offset and False.
        Raises IdempotencyConflictError when the key was used for another request.
        """

    async def discard_job(self, offset: int) -> None:
        """Forget a job that never reached the broker; its offset is never reused."""

    async def store_replies(self, replies: Sequence[Reply]) -> list[StoreOutcome]:
        """Store replies once each, in one transaction, refusing what cannot be true of their
        job (ledger.rules); outcomes in the same order. LedgerRejectedError if the database
        refused one of them (nothing of the batch is stored then)."""

    async def replies(self, offset: int, after_seq: int = -1) -> list[Reply]:
        """The job's replies with seq > after_seq, in order, up to its first missing seq (a
        reply recorded ahead of one still on its way is not shown yet); UnknownOffsetError
        for an offset never handed out."""

    async def job(self, offset: int) -> JobRecord:
        """The whole job (replies as in `replies`, the state they make); UnknownOffsetError
        if the offset was never handed out."""
