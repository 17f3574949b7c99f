"""Progress inside a step: `await ctx.progress(...)` as rate-limited `progress` replies."""

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable

from contracts import Reply, ReplyKind, StepProgress

logger = logging.getLogger(__name__)

PROGRESS_SECONDS = 0.1
"""At most one progress reply per job this often (the latest tick always goes out)."""


class ProgressReporter:
    """One job's progress ticks, each published as a `progress` reply on the reply topic.

    A tick is published at once unless one went out less than `interval` seconds ago; then it
    is held, replacing any held before it, and the held one goes out when the window ends, or
    just before its step's own reply (`settle`), whichever comes first. Nothing of a step is
    published after its own reply.
    """

    def __init__(
        self,
        offset: int,
        publish: Callable[[Reply], Awaitable[None]],
        interval: float = PROGRESS_SECONDS,
    ) -> None:
        self._offset = offset
        self._publish = publish
        self._interval = interval
        self._last_sent = -math.inf
        self._held: Reply | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._settled_below = 0
        """Steps below this seq have published their own reply: their ticks are dropped."""
        self._in_flight: set[asyncio.Future[None]] = set()

    async def report(self, seq: int, progress: StepProgress) -> None:
        """Publish (or hold) one tick of step `seq`."""
        if seq < self._settled_below:
            return  # its step's reply is out: a tick after it would mislead every follower
        reply = Reply(
            offset=self._offset, seq=seq, kind=ReplyKind.PROGRESS, value=progress.model_dump()
        )
        loop = asyncio.get_running_loop()
        wait = self._last_sent + self._interval - loop.time()
        if wait > 0 or self._held is not None:
            self._held = reply
            if self._timer is None:
                self._timer = loop.call_later(max(wait, 0), self._release)
            return
        self._send(reply)
        # NOTE: one turn of the loop lets the publish reach the channel before the step goes
        # on, as run_job does for results: a step's ticks and its result keep their order.
        await asyncio.sleep(0)

    def settle(self, seq: int) -> None:
        """Step `seq` is about to publish its own reply: its held tick goes out first, now."""
        self._settled_below = seq + 1
        self._cancel_timer()
        held, self._held = self._held, None
        if held is not None and held.seq == seq:
            self._send(held)

    def close(self) -> None:
        """The run is over: nothing held goes out any more."""
        self._settled_below = 2**63
        self._cancel_timer()
        self._held = None

    def _release(self) -> None:
        self._timer = None
        held, self._held = self._held, None
        if held is not None:
            self._send(held)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _send(self, reply: Reply) -> None:
        self._last_sent = asyncio.get_running_loop().time()
        publishing = asyncio.ensure_future(self._publish(reply))
        self._in_flight.add(publishing)
        publishing.add_done_callback(self._sent)

    def _sent(self, publishing: "asyncio.Future[None]") -> None:
        self._in_flight.discard(publishing)
        if publishing.cancelled():
            return
        if (exc := publishing.exception()) is not None:
            # NOTE: not the step's failure: a tick is advice. If the broker is gone, the
            # step's own reply fails too, and the job is handed back as always.
            logger.warning("progress reply not published offset=%s: %s", self._offset, exc)
