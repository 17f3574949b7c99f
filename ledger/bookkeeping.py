"""A job's bookkeeping while a batch of its replies is stored: read once, written once.

Every stored reply moves its job's `next_seq`, `max_seq` and final (ledger/rules.py). Read and
written per reply, a job's four replies in one batch cost eight statements on its row; kept here
between them, two. SQLite's writer uses it; PostgreSQL's batches do the same and more in one
statement (ledger/postgres_replies.py).
"""

from dataclasses import dataclass

from ledger.rules import JobView


@dataclass
class _Pending:
    view: JobView
    error: str | None


class Views:
    """The bookkeeping of the jobs whose replies one transaction stored, not yet written."""

    def __init__(self) -> None:
        self._pending: dict[int, _Pending] = {}

    def __bool__(self) -> bool:
        return bool(self._pending)

    def view(self, offset: int) -> JobView | None:
        """The job's bookkeeping as this transaction left it; None: read it from its row."""
        pending = self._pending.get(offset)
        return None if pending is None else pending.view

    def stored(self, offset: int, view: JobView, error: str | None) -> None:
        """A reply of `offset` was stored: its bookkeeping is now `view`, and `error` (a failed
        job's reason) is kept if set."""
        before = self._pending.get(offset)
        kept = error if error is not None else None if before is None else before.error
        self._pending[offset] = _Pending(view, kept)

    def take(self) -> list[tuple[int, JobView, str | None]]:
        """Every job's (offset, bookkeeping, error) to write, in offset order; then none."""
        taken = [(offset, p.view, p.error) for offset, p in sorted(self._pending.items())]
        self._pending.clear()
        return taken
