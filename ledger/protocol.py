"""The Ledger protocol: what every ledger does, whatever database holds it."""

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from contracts import JobRecord, JobRequest, JobState, Reply
from contracts.listing import JobFilter, JobRow
from contracts.principals import KeyRecord
from ledger.batches import BatchItems
from ledger.rules import CancelOutcome, StoreOutcome


class Ledger(Protocol):
    """Durable record of jobs and replies. Every write is committed before it returns."""

    async def open(self) -> None:
        """Connect and create the schema if needed."""

    async def close(self) -> None:
        """Release connections."""

    async def ping(self) -> None:
        """Raise LedgerUnavailableError unless a write would succeed now."""

    async def create_job(
        self,
        request: JobRequest,
        idempotency_key: str | None = None,
        due_at: datetime | None = None,
        owner: str | None = None,
    ) -> tuple[int, bool]:
        """Allocate the next offset and record the job as queued (with `due_at`: scheduled,
        until `claim_due` hands it out), owned by the API key named `owner` (None: auth off).

        Returns `(offset, created)`; with a known idempotency key, the earlier offset and False.
        Raises IdempotencyConflictError when the key was used for another request.
        """

    async def cancel_job(self, offset: int) -> tuple[CancelOutcome, JobState]:
        """Record a cancel request (ledger.rules.judge_cancel says what it does): a delayed job
        still waiting ends `cancelled` now; the outcome and the job's state after it.
        UnknownOffsetError for an offset never handed out."""

    async def claim_due(self, limit: int) -> list[tuple[int, JobRequest]]:
        """Up to `limit` scheduled jobs whose time has come, claimed for one lease
        (ledger/steering.py): no other claim returns them until it runs out."""

    async def mark_released(self, offset: int) -> None:
        """A claimed job was published and confirmed: it is queued now (unless cancelled)."""

    async def discard_job(self, offset: int) -> None:
        """Forget a job that never reached the broker; its offset is never reused."""

    async def release_again(self, offset: int) -> None:
        """A queued job whose publish is in doubt (it may or may not be on jobcast.jobs) becomes
        a due scheduled job, which the release loop publishes again (it may run twice: at
        least once). Nothing changes once a reply of it was stored."""

    async def store_replies(self, replies: Sequence[Reply]) -> list[StoreOutcome]:
        """Store replies once each, in one transaction, refusing what cannot be true of their
        job (ledger.rules); outcomes in the same order. LedgerRejectedError if the database
        refused one of them (nothing of the batch is stored then)."""

    async def replies(
        self, offset: int, after_seq: int = -1, *, with_progress: bool = False
    ) -> list[Reply]:
        """The job's replies with seq > after_seq, in order, up to its first missing seq (a
        reply recorded ahead of one still on its way is not shown yet); UnknownOffsetError
        for an offset never handed out. `with_progress`: and the job's kept `progress` reply
        if its seq > after_seq, read in the same statement (a follower's one read)."""

    async def job(self, offset: int) -> JobRecord:
        """The whole job (replies as in `replies`, the state they make); UnknownOffsetError
        if the offset was never handed out."""

    async def create_jobs(
        self, items: BatchItems, due: Sequence[datetime | None], owner: str | None = None
    ) -> list[tuple[int, bool]]:
        """Record a batch in one transaction: `(offset, created)` per item, in order (a key
        used before for the same request: its earlier offset, not created). A job with a `due`
        time waits, scheduled. IdempotencyConflictError, and nothing recorded, when a key was
        used for another request."""

    async def discard_jobs(self, offsets: Sequence[int]) -> None:
        """Forget jobs that never reached the broker, as discard_job does, in one write."""

    async def delete_job(self, offset: int) -> None:
        """Delete a finished job's request and results now; its offset answers as purged.
        JobNotFinishedError while it has not ended; UnknownOffsetError (OffsetExpiredError
        when already purged) for no such job."""

    async def purge_finished(self, before: datetime, limit: int) -> int | None:
        """Delete up to `limit` jobs that ended before `before`, in one transaction, and
        remember their offsets as purged; how many. None when another gateway is purging."""

    async def reclaim_space(self) -> None:
        """Hand the space purged jobs took back to the file system, where the database needs
        telling (SQLite); in small steps."""

    async def progress(self, offset: int) -> Reply | None:
        """The job's latest `progress` reply kept (ledger/progress.py); None if none."""

    async def pending_cancels(self, limit: int) -> list[int]:
        """Offsets of unfinished jobs whose cancel was requested, lowest first, at most
        `limit` (what a worker that has just begun hearing cancels could have missed)."""

    async def list_jobs(self, found: JobFilter, before: int | None, limit: int) -> list[JobRow]:
        """Up to `limit` jobs matching `found` with an offset below `before` (None: any),
        newest first."""

    async def feed(self, found: JobFilter, after: int, limit: int) -> list[tuple[int, Reply]]:
        """Up to `limit` replies of jobs matching `found` (their state now) with a feed cursor
        above `after`, as (cursor, reply) in cursor order. A reply gets its cursor when it
        joins its job's prefix, so each job's replies come in seq order, each once, and a
        cursor, once read, never has a lower one appear after it."""

    async def feed_end(self) -> int:
        """The highest feed cursor handed out so far (0 before the first)."""

    async def stats(self, minutes: int) -> tuple[dict[JobState, int], list[int]]:
        """Jobs changed in the last `minutes`, by state now; jobs that ended done in each of
        those minutes, oldest first."""

    async def job_owner(self, offset: int) -> str | None:
        """The name of the API key that scheduled the job; None for a job scheduled with auth
        off and for an offset with no job (one read either way: callers answer both alike)."""

    async def add_key(self, name: str, digest: str, admin: bool) -> KeyRecord:
        """Record an API key by its digest (never the secret); KeyExistsError for a name used
        before, revoked or not."""

    async def keys(self) -> list[KeyRecord]:
        """Every API key, revoked ones too, by name."""

    async def revoke_key(self, name: str) -> bool:
        """Revoke the key named `name` from now on; False if there is none not yet revoked."""

    async def key_by_digest(self, digest: str) -> KeyRecord | None:
        """The key whose secret has this sha256 digest, revoked or not; None if none."""
