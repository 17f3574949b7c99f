"""Retention: finished jobs older than JOBCAST_RETENTION are purged in the background, a few
hundred per transaction, and their offsets remembered as purged (410, not 404).

Plain code over the Ledger protocol: no database here, no HTTP.
"""

import asyncio
import logging
import re
from collections.abc import Iterable
from datetime import timedelta

from contracts import UnavailableError
from contracts.errors import LedgerRejectedError
from contracts.messages import utcnow
from ledger.protocol import Ledger

logger = logging.getLogger(__name__)

PURGE_BATCH = 500
"""Jobs deleted per transaction: small enough that a purge never holds the writer for long."""
PURGE_PAUSE_SECONDS = 0.05
"""The rest between two purge transactions, so serving goes on between them."""
MAX_INTERVAL_SECONDS = 60.0
"""The longest wait between two purge rounds."""

MAX_DURATION = timedelta(days=36500)
"""The longest duration a setting takes (a century): `now - retention` and a read token's
expiry must stay dates; past a few thousand years they overflowed, long after the start."""

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """`7d`, `12h`, `30m`, `90s` or plain seconds (`3600`, `0.5`) as a timedelta."""
    found = _DURATION.match(text.lower())
    if found is None:
        raise ValueError(
            f"not a duration: {text[:64]!r} (write 7d, 12h, 30m, 90s or a number of seconds)"
        )
    seconds = float(found.group(1)) * _UNIT_SECONDS[found.group(2)]
    if seconds <= 0:
        raise ValueError("a retention must be longer than 0 seconds")
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError(f"a duration must be at most {MAX_DURATION.days} days (a century)")
    return timedelta(seconds=seconds)


def runs(offsets: Iterable[int]) -> list[tuple[int, int]]:
    """Offsets as runs of consecutive ones, `(first, last)` ascending: [1, 2, 3, 7] → [(1, 3),
    (7, 7)]. The ledger remembers purged offsets this way."""
    found: list[tuple[int, int]] = []
    for offset in sorted(set(offsets)):
        if found and found[-1][1] == offset - 1:
            found[-1] = (found[-1][0], offset)
        else:
            found.append((offset, offset))
    return found


def interval(retention: timedelta) -> float:
    """Seconds between purge rounds: a quarter of the retention, at most a minute."""
    return min(retention.total_seconds() / 4, MAX_INTERVAL_SECONDS)


class Purger:
    """Purges the finished jobs older than `retention`, round after round, until stopped."""

    def __init__(
        self,
        ledger: Ledger,
        retention: timedelta,
        *,
        batch: int = PURGE_BATCH,
        pause: float = PURGE_PAUSE_SECONDS,
    ) -> None:
        self._ledger = ledger
        self._retention = retention
        self._batch = batch
        self._pause = pause
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="jobcast-purger")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def purge_once(self) -> int:
        """One round: purge every job that has expired now, a batch per transaction; the
        number purged. 0 at once when another gateway is purging (PostgreSQL)."""
        before = utcnow() - self._retention
        purged = 0
        while True:
            done = await self._ledger.purge_finished(before, self._batch)
            if done is None:  # another gateway holds the purge lock this round
                return purged
            purged += done
            if done < self._batch:
                break
            await asyncio.sleep(self._pause)
        if purged:
            await self._ledger.reclaim_space()
            logger.info("purged %s finished jobs older than %s", purged, self._retention)
        return purged

    async def _run(self) -> None:
        wait = interval(self._retention)
        while True:
            try:
                await self.purge_once()
            except (UnavailableError, LedgerRejectedError) as exc:
                # NOTE: the ledger is down, busy or refused this write: the next round tries
                # again; nothing is half-purged (each batch is one transaction).
                logger.warning("purge round skipped: %s", exc)
            except Exception:  # a bug of ours: the loop must not die, or nothing is purged again
                logger.exception("purge round failed; the next round tries again")
            await asyncio.sleep(wait)
