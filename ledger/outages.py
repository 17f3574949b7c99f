"""Waiting out a database outage inside a message handler."""

import logging
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from tenacity import (
    AsyncRetrying,
    before_sleep_log,
    retry_if_exception_type,
    wait_exponential_jitter,
)

from contracts.errors import LedgerUnavailableError

logger = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

CAP_SECONDS = 5.0


async def while_ledger_down(
    call: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs
) -> T:
    """Await `call` until the ledger answers, backing off up to CAP_SECONDS between tries."""
    # NOTE: the first try goes without tenacity: it runs for every message, and building
    # AsyncRetrying per call cost ~15% of the gateway's CPU under load (py-spy, bench/).
    try:
        return await call(*args, **kwargs)
    except LedgerUnavailableError:
        logger.warning("ledger unavailable; retrying with backoff")
    async for attempt in AsyncRetrying(
        retry=retry_if_exception_type(LedgerUnavailableError),
        wait=wait_exponential_jitter(multiplier=0.1, max=CAP_SECONDS, jitter=0.1),
        before_sleep=before_sleep_log(logger, logging.WARNING),
        reraise=True,
    ):
        with attempt:
            return await call(*args, **kwargs)
    raise AssertionError("unreachable: tenacity retries forever")  # pragma: no cover
