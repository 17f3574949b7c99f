"""Handlers wait out a ledger outage instead of dropping or requeueing the message."""

import pytest

from contracts import LedgerUnavailableError
from ledger.outages import while_ledger_down


async def test_a_call_is_retried_until_the_ledger_answers():
    calls = 0

    async def store(value: str) -> str:
        nonlocal calls
        calls += 1
        if calls < 4:
            raise LedgerUnavailableError("PostgreSQL restarting")
        return value

    assert await while_ledger_down(store, "stored") == "stored"
    assert calls == 4


async def test_other_errors_are_not_retried():
    calls = 0

    async def broken() -> None:
        nonlocal calls
        calls += 1
        raise ValueError("a bug, not an outage")

    with pytest.raises(ValueError, match="a bug"):
        await while_ledger_down(broken)
    assert calls == 1
