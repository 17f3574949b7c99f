"""Idempotency keys are stored per owner (ledger/idempotency.py): no two (owner, key) alike."""

import pytest

from contracts import IdempotencyConflictError
from ledger.idempotency import as_sent, scoped, unscoping


def test_a_key_is_stored_under_its_owner_and_read_back_as_sent():
    assert scoped(None, "k") == "k"  # auth off: everyone's key, as before
    assert scoped("alice", None) is None
    stored = scoped("alice", "k")
    assert stored is not None
    assert stored != scoped("bob", "k")
    assert as_sent(stored) == as_sent("k") == "k"
    # a key that looks like an owner and a key is still one key of its own owner
    assert scoped("a", "b:c") != scoped("a:b", "c")


def test_an_owner_name_holding_the_separator_is_refused():
    with pytest.raises(ValueError, match="control character"):
        scoped("ali\x1fce", "k")


async def test_a_conflict_names_the_key_as_sent():
    async def conflicting() -> None:
        raise IdempotencyConflictError(scoped("alice", "order-7") or "", 5)

    with pytest.raises(IdempotencyConflictError) as conflict:
        await unscoping(conflicting)
    assert (
        str(conflict.value) == "idempotency key 'order-7' was used for another request (offset 5)"
    )
