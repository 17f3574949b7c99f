"""A gateway's background loops outlive a round that fails in a way no one foresaw: the next
round runs, and the failure is in the log (a task that died would say nothing, and purging or
waking followers on other gateways would stop for good)."""

import asyncio
import logging
from datetime import datetime, timedelta

import pytest

from ledger.notifications import ReplyListener
from ledger.retention import Purger
from tests.support.database import admin_url
from tests.support.waiting import eventually


class LedgerFailingOnce:
    """Just what a Purger asks of a ledger; its first round fails with a bug, not an outage."""

    def __init__(self) -> None:
        self.rounds = 0

    async def purge_finished(self, before: datetime, limit: int) -> int:
        self.rounds += 1
        if self.rounds == 1:
            raise OverflowError("date value out of range")
        return 0

    async def reclaim_space(self) -> None:
        pass


async def test_a_purge_round_that_fails_unforeseen_is_logged_and_the_next_round_runs(caplog):
    ledger = LedgerFailingOnce()
    purger = Purger(ledger, timedelta(milliseconds=40))  # type: ignore[arg-type]
    purger.start()
    try:
        await eventually(lambda: asyncio.sleep(0, ledger.rounds), until=lambda n: n >= 3)
    finally:
        await purger.stop()
    assert "purge round failed; the next round tries again" in caplog.text
    assert "OverflowError: date value out of range" in caplog.text


async def test_a_reply_listener_whose_callback_failed_listens_again(caplog):
    calls = 0

    def on_connected() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("a follower hub bug")

    stored: list[int] = []
    listener = ReplyListener(admin_url(), stored.append, on_connected)
    listener.start()
    try:
        await eventually(lambda: asyncio.sleep(0, calls), until=lambda n: n >= 2, timeout=10)
        await eventually(lambda: asyncio.sleep(0, listener.connected.is_set()))
    finally:
        await listener.stop()
    assert "listening for replies failed" in caplog.text
    assert "RuntimeError: a follower hub bug" in caplog.text


@pytest.fixture(autouse=True)
def _errors_logged(caplog):
    caplog.set_level(logging.INFO)
