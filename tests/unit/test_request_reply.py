"""RPC over a channel that is still reopening after a reconnect (found by the fault suite)."""

import time
from types import SimpleNamespace
from typing import Any

import pytest
from aiormq.exceptions import ChannelInvalidStateError

from contracts import BrokerUnavailableError, ProgressQuery
from contracts.publishing import request_reply
from contracts.topology import PROGRESS_QUEUE


class ReopeningBroker:
    """Fails like aio-pika right after a reconnect `failures` times, then answers."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    async def request(self, message: Any, **_: Any) -> SimpleNamespace:
        self.calls += 1
        if self.calls <= self.failures:
            raise ChannelInvalidStateError('<Channel: "1"> closed')
        return SimpleNamespace(body=b'{"offset": 3, "next_seq": 2}')


async def test_a_channel_that_reopens_within_the_timeout_still_answers():
    broker = ReopeningBroker(failures=2)
    body = await request_reply(broker, ProgressQuery(offset=3), queue=PROGRESS_QUEUE,  # type: ignore[arg-type]
                               timeout=3)
    assert body == b'{"offset": 3, "next_seq": 2}'
    assert broker.calls == 3


async def test_a_channel_that_stays_broken_is_broker_unavailable_by_the_deadline():
    began = time.monotonic()
    with pytest.raises(BrokerUnavailableError, match=r"jobcast\.progress"):
        await request_reply(ReopeningBroker(failures=10**6), ProgressQuery(offset=3),  # type: ignore[arg-type]
                            queue=PROGRESS_QUEUE, timeout=0.5)
    assert time.monotonic() - began < 1.5
