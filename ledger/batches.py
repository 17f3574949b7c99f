"""Recording a batch of jobs at once: which items are repeats, which are new (plain code, the
same for every database)."""

from collections.abc import Mapping, Sequence

from contracts import IdempotencyConflictError, JobRequest

BatchItems = Sequence[tuple[JobRequest, str | None]]
"""Each job's request and idempotency key, in the batch's order."""


def repeats(items: BatchItems, known: Mapping[str, tuple[int, JobRequest]]) -> list[int | None]:
    """For each item, the offset it already has (its key was used for the same request) or
    None when it is new. `known`: the stored jobs of the batch's keys, by key.

    IdempotencyConflictError when a key was used for another request: then nothing of the
    batch may be recorded. (A batch never repeats a key: BatchRequest refuses that.)
    """
    placed: list[int | None] = []
    for request, key in items:
        if key is None or key not in known:
            placed.append(None)
            continue
        offset, stored = known[key]
        if stored != request:
            raise IdempotencyConflictError(key, offset)
        placed.append(offset)
    return placed


def fill(placed: Sequence[int | None], fresh: Sequence[int]) -> list[tuple[int, bool]]:
    """Every item's `(offset, created)`: repeats keep theirs, new ones take `fresh` offsets
    (one per None, ascending) in the batch's order."""
    new = iter(sorted(fresh))
    filled = [(next(new), True) if offset is None else (offset, False) for offset in placed]
    if next(new, None) is not None:
        raise ValueError("more fresh offsets than new jobs")
    return filled
