"""Retention under a fault: the gateway is killed (kill -9) while it purges finished jobs and
replies flow. A purge loses nothing else: every job runs to its end, every list a reader sees
is a prefix of the job's results, and an offset handed out is never 404, only expired (410)
once its job has ended."""

import asyncio
import contextlib

import httpx
import pytest

from tests.faults.checker import Checker
from tests.faults.conftest import Cluster
from tests.faults.pipelines import COUNTED_VALUES
from tests.support.waiting import eventually

JOBS = 12


@pytest.fixture
def fault_env(fault_env: dict[str, str]) -> dict[str, str]:
    return {**fault_env, "JOBCAST_RETENTION": "1"}


async def _finished_steps(checker: Checker) -> int:
    return sum(event == "finish" for *_, event in checker.executions())


class Reader:
    """Reads every handed-out offset's list again and again, noting each answer."""

    def __init__(self, url: str, offsets: list[int]) -> None:
        self.url = url
        self.offsets = offsets
        self.statuses: dict[int, set[int]] = {}
        self.bad: list[tuple[int, object]] = []
        self.last: dict[int, int] = {}

    async def snapshot(self) -> dict[int, int]:
        """The last status seen for each offset read so far."""
        return dict(self.last)

    async def run(self) -> None:
        async with httpx.AsyncClient(base_url=self.url, timeout=5) as http:
            while True:
                for offset in list(self.offsets):
                    with contextlib.suppress(httpx.TransportError):
                        answer = await http.get(f"/messages/{offset}")
                        self.statuses.setdefault(offset, set()).add(answer.status_code)
                        self.last[offset] = answer.status_code
                        body = answer.json()
                        if answer.status_code == 200 and body != COUNTED_VALUES[: len(body)]:
                            self.bad.append((offset, body))
                await asyncio.sleep(0.05)


async def test_gateway_killed_while_purging_loses_nothing_else(cluster: Cluster):
    for _ in range(2):
        cluster.start_worker()
    cluster.wait_consumers("jobcast.jobs", 2)
    offsets = await cluster.checker.schedule(JOBS)
    reader = Reader(cluster.checker.gateway_url, offsets)
    reading = asyncio.ensure_future(reader.run())
    try:
        await eventually(
            reader.snapshot,
            until=lambda last: sum(code == 410 for code in last.values()) >= 2,
            timeout=30,
            what="the first jobs purged",
        )
        offsets += await cluster.checker.schedule(JOBS)  # the reader follows these too
        finished = await _finished_steps(cluster.checker)
        await eventually(
            lambda: _finished_steps(cluster.checker),
            until=lambda n: n >= finished + 2,
            timeout=20,
            what="replies flowing while purges run",
        )
        assert cluster.gateway is not None
        cluster.gateway.kill()
        down_at = await _finished_steps(cluster.checker)
        await eventually(
            lambda: _finished_steps(cluster.checker),
            until=lambda n: n >= down_at + 4,
            timeout=20,
            what="steps finishing while the gateway is down",
        )
        cluster.start_gateway("gateway-after-kill")
        await eventually(
            reader.snapshot,
            until=lambda last: len(last) == len(offsets) and set(last.values()) == {410},
            timeout=90,
            what="every job ended and purged",
        )
    finally:
        reading.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reading

    assert reader.bad == []
    never_404 = {offset: codes for offset, codes in reader.statuses.items() if 404 in codes}
    assert never_404 == {}
    finishes = {
        (o, seq) for o, seq, _, _, event in cluster.checker.executions() if event == "finish"
    }
    assert finishes >= {(offset, seq) for offset in offsets for seq in range(3)}
    assert len(set(offsets)) == 2 * JOBS
