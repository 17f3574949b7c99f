"""What a worker knows of cancelled jobs: the control messages it heard, and the running jobs
they stop. Plain asyncio; consumer/control.py feeds it from jobcast.control."""

import asyncio
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from contracts.messages import utcnow

REMEMBERED = 100_000
"""Cancelled offsets a worker remembers (the oldest forgotten first): a forgotten one is still
in the ledger, which a redelivered job asks."""

CLOCK_SKEW_SECONDS = 2.0
"""How far a gateway's clock may be ahead of this worker's when it stamps a job's scheduled_at
(`may_have_missed`); NTP keeps hosts far closer."""


class Cancels:
    """The cancels this worker heard, and an event per running job that a cancel sets."""

    def __init__(self, remembered: int = REMEMBERED) -> None:
        self._heard: OrderedDict[int, None] = OrderedDict()
        self._remembered = remembered
        self._running: dict[int, set[asyncio.Event]] = {}
        self.listening_since: datetime | None = None
        """When this worker last began hearing control messages (None: not yet)."""
        self.generation = 0
        """Counts the times this worker (re)began hearing control messages."""
        self._caught_up = False

    def heard(self, offset: int) -> None:
        """A cancel of job `offset` arrived: its running steps see it, its next step never runs."""
        self._heard[offset] = None
        self._heard.move_to_end(offset)
        while len(self._heard) > self._remembered:
            self._heard.popitem(last=False)
        for event in self._running.get(offset, ()):
            event.set()

    def listening(self) -> None:
        """This worker (re)started hearing control messages: what was sent before, it missed."""
        self.listening_since = utcnow()
        self.generation += 1
        self._caught_up = False

    @property
    def catching_up(self) -> bool:
        """True until the ledger said which cancels were requested before this worker began
        hearing them (`caught_up`): until then, older jobs are checked one by one."""
        return not self._caught_up

    def caught_up(self, pending: Iterable[int], generation: int) -> None:
        """The ledger's unfinished cancelled jobs, read after this worker began hearing control
        messages (at `generation`): with what it hears from now on, it misses none."""
        # NOTE: read while this worker was not listening (a reconnect since the question was
        # asked), the list may lack a cancel sent meanwhile: not caught up then.
        if generation != self.generation or self.listening_since is None:
            return
        for offset in pending:
            self.heard(offset)
        self._caught_up = True

    def __contains__(self, offset: object) -> bool:
        return offset in self._heard

    def may_have_missed(self, scheduled_at: datetime) -> bool:
        """Whether a cancel of a job scheduled at `scheduled_at` may have been sent while this
        worker was not listening (then the ledger is asked before the job runs)."""
        # NOTE: a job can be cancelled only after it was scheduled: if this worker was
        # listening since before then (allowing for the gateway's clock being off), it heard.
        since = self.listening_since
        if since is None:
            return True
        if self._caught_up:
            return False  # the ledger listed every cancel requested before `since`
        return scheduled_at < since + timedelta(seconds=CLOCK_SKEW_SECONDS)

    @contextmanager
    def running(self, offset: int) -> Iterator[asyncio.Event]:
        """The event a cancel of `offset` sets, while the block runs the job."""
        event = asyncio.Event()
        if offset in self._heard:
            event.set()
        self._running.setdefault(offset, set()).add(event)
        try:
            yield event
        finally:
            events = self._running[offset]
            events.discard(event)
            if not events:
                del self._running[offset]
