"""The client's view of many jobs: GET /jobs, GET /stats and the feed GET /jobs/stream."""

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import datetime

import httpx
from httpx_sse import aconnect_sse

from client.errors import GatewayUnreachableError
from client.http import BACKOFF_MAX_SECONDS, BACKOFF_SECONDS
from contracts import JobState, Reply, UnavailableError
from contracts.listing import JobPage, Stats

logger = logging.getLogger(__name__)

_RETRY_STATUS = frozenset({429, 502, 503, 504})
"""Answers a resuming feed waits out. 429 among them: the gateway may still count the feed
that just dropped against the key's JOBCAST_MAX_FEEDS_PER_KEY until it notices it is gone."""


class FeedTransport:
    """Lists, counts and follows many jobs on one gateway over HTTP."""

    def __init__(self, url: str, timeout: float = 10.0, api_key: str | None = None) -> None:
        self.url = url.rstrip("/")
        # NOTE: a feed stays quiet while no job runs; the server pings every 15 s.
        self._http = httpx.AsyncClient(
            base_url=self.url,
            timeout=httpx.Timeout(timeout, read=max(timeout, 45.0)),
            headers={} if api_key is None else {"Authorization": f"Bearer {api_key}"},
        )

    async def close(self) -> None:
        await self._http.aclose()

    async def jobs(
        self,
        *,
        state: JobState | str | None = None,
        fn: str | None = None,
        tag: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> JobPage:
        """GET /jobs: one page, newest first; pass its `next` as `cursor` for the next."""
        params = _params(
            state=state,
            fn=fn,
            tag=tag,
            since=since and since.isoformat(),
            until=until and until.isoformat(),
            limit=limit,
            cursor=cursor,
        )
        return JobPage.model_validate_json(await self._get("/jobs", params))

    async def stats(self, minutes: int = 15) -> Stats:
        """GET /stats."""
        return Stats.model_validate_json(await self._get("/stats", {"minutes": minutes}))

    async def follow_many(
        self,
        *,
        state: JobState | str | None = None,
        fn: str | None = None,
        tag: str | None = None,
        after: int | None = None,
    ) -> AsyncIterator[tuple[int, Reply]]:
        """Every reply of the matching jobs as `(cursor, reply)`, live, for as long as you
        iterate: from `after` (a cursor this gave before; 0: from the first reply ever; None:
        from now). A dropped stream or a restarting gateway is retried with capped backoff,
        resuming after the last cursor, so nothing is missed or repeated."""
        params = _params(state=state, fn=fn, tag=tag)
        failures = 0
        connected = False
        while True:
            headers = {} if after is None else {"Last-Event-ID": str(after)}
            try:
                async with aconnect_sse(
                    self._http, "GET", "/jobs/stream", params=params, headers=headers
                ) as source:
                    status = source.response.status_code
                    if status != 200:
                        await source.response.aread()
                        if connected and status in _RETRY_STATUS:
                            raise _NotNow(f"answer {status}")
                        _raise_for(source.response)
                    connected = True
                    async for event in source.aiter_sse():
                        failures = 0
                        if event.id:
                            after = int(event.id)
                        if event.data:  # the first frame carries only the feed's position
                            yield after or 0, Reply.model_validate_json(event.data)
                why = "stream closed"  # the gateway is stopping
            except (httpx.TransportError, _NotNow) as exc:
                if not connected:
                    raise GatewayUnreachableError(
                        f"cannot reach the jobcast gateway at {self.url}: {exc!r}"
                    ) from exc
                why = repr(exc)
            failures += 1
            logger.info("feed dropped (%s), resuming after %s", why, after)
            await _pause(failures)

    async def _get(self, path: str, params: dict[str, str | int]) -> bytes:
        try:
            answer = await self._http.get(path, params=params)
        except httpx.TransportError as exc:
            raise GatewayUnreachableError(
                f"cannot reach the jobcast gateway at {self.url}: {exc!r}"
            ) from exc
        _raise_for(answer)
        return answer.content


class _NotNow(Exception):
    """The gateway answered, but "not now" (502/503/504)."""


def _params(**given: object) -> dict[str, str | int]:
    return {
        key: value.value if isinstance(value, JobState) else value  # type: ignore[misc]
        for key, value in given.items()
        if value is not None
    }


def _raise_for(answer: httpx.Response) -> None:
    if answer.status_code == 422:
        raise ValueError(f"the gateway refused the filters: {answer.text[:500]}")
    if answer.status_code == 503:
        raise UnavailableError(f"the gateway is not ready: {answer.text[:200]}")
    if answer.status_code >= 400:
        raise GatewayUnreachableError(
            f"unexpected answer {answer.status_code} from {answer.request.url}: {answer.text[:200]}"
        )


async def _pause(failures: int) -> None:
    """Back off before reconnecting, as `follow` does."""
    await asyncio.sleep(min(BACKOFF_SECONDS * 2.0 ** min(failures, 10), BACKOFF_MAX_SECONDS))
