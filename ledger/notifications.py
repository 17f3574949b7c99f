"""Hearing about replies any gateway stored: PostgreSQL LISTEN on a connection of its own.

The ledger's schema has a trigger that issues `pg_notify('jobcast_replies', '<offset>')` for
every reply row inserted; PostgreSQL delivers it when the storing transaction commits, to every
listening connection, whichever gateway committed. Each gateway keeps one such connection and
turns each notification into a wake-up of the followers of that offset.

A notification sent while the connection is down is lost, so on every (re)connect the listener
calls `on_connected` first: the gateway then has every follower re-read once.
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import asyncpg

logger = logging.getLogger(__name__)

REPLIES_CHANNEL = "jobcast_replies"
"""The notification channel; the payload is the offset whose reply was stored."""

CHECK_SECONDS = 30.0
"""How often an idle listening connection is checked: one `SELECT 1` per gateway, so a
connection that died silently (a network cut, no FIN) is replaced within about this long."""

RETRY_SECONDS = (0.2, 5.0)
"""First and longest wait between connection attempts while PostgreSQL is unreachable."""

_DOWN = (
    OSError,
    TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
)


class ReplyListener:
    """One LISTEN connection per gateway, reconnected for as long as the gateway runs."""

    def __init__(
        self,
        dsn: str,
        on_stored: Callable[[int], None],
        on_connected: Callable[[], None],
        *,
        check_seconds: float = CHECK_SECONDS,
    ) -> None:
        self._dsn = dsn
        self._on_stored = on_stored
        self._on_connected = on_connected
        self._check_seconds = check_seconds
        self._running: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()
        """Set while the listening connection is up (tests and /ready may look)."""

    def start(self) -> None:
        """Listen in the background (connecting as soon as PostgreSQL answers)."""
        self._running = asyncio.create_task(self._run(), name="jobcast-reply-listener")

    async def stop(self) -> None:
        if self._running is not None:
            self._running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._running

    async def _run(self) -> None:
        delay = RETRY_SECONDS[0]
        while True:
            try:
                await self._listen()
                delay = RETRY_SECONDS[0]
            except _DOWN as exc:
                logger.warning(
                    "reply notifications unavailable (%s); retrying in %.1fs", exc, delay
                )
            except Exception:  # a bug of ours: the loop must not die, or followers go deaf
                logger.exception("listening for replies failed; retrying in %.1fs", delay)
            finally:
                self.connected.clear()
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_SECONDS[1])

    async def _listen(self) -> None:
        """Listen until the connection is lost."""
        conn = await asyncpg.connect(self._dsn, timeout=10)
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _: lost.set())
        try:
            await conn.add_listener(REPLIES_CHANNEL, self._deliver)
            self.connected.set()
            logger.info("listening for replies stored by any gateway")
            self._on_connected()
            while not lost.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._check_seconds):
                        await lost.wait()
                if not lost.is_set():
                    await conn.fetchval("SELECT 1", timeout=10)
            logger.warning("reply notifications connection lost; reconnecting")
        finally:
            conn.terminate()

    def _deliver(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            offset = int(payload)
        except ValueError:
            logger.warning("ignoring a %s notification that is not an offset", REPLIES_CHANNEL)
            return
        self._on_stored(offset)
