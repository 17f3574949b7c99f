"""The client's HTTP transport: POST /schedule, GET /jobs, POST /jobs/{offset}/cancel, and the
SSE stream."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable
from typing import TypeVar

import httpx
from httpx_sse import aconnect_sse
from pydantic import JsonValue, TypeAdapter

from client.errors import GatewayUnreachableError, ScheduleRejectedError
from contracts import (
    JobAccepted,
    JobRecord,
    JobRequest,
    Reply,
    ReplyKind,
    UnavailableError,
    UnknownOffsetError,
)
from contracts.batches import BatchAccepted, BatchRequest
from contracts.control import CancelAccepted, JobFinishedError

logger = logging.getLogger(__name__)

_VALUES = TypeAdapter(list[JsonValue])

BACKOFF_SECONDS = 0.2
BACKOFF_MAX_SECONDS = 5.0
"""A dropped stream is resumed after 0.4 s, 0.8 s, … then every 5 s, until `follow`'s timeout."""

_RETRY_STATUS = frozenset({502, 503, 504})
"""Answers that say "not now" (a restarting gateway, a proxy in front of one): try again."""

T = TypeVar("T")


class HttpTransport:
    """Talks to one gateway over HTTP; maps its answers to contract objects and errors."""

    def __init__(self, url: str, timeout: float = 10.0, api_key: str | None = None) -> None:
        self.url = url.rstrip("/")
        # NOTE: streams stay quiet between steps; the server pings every 15 s.
        self._http = httpx.AsyncClient(
            base_url=self.url,
            timeout=httpx.Timeout(timeout, read=max(timeout, 45.0)),
            headers={} if api_key is None else {"Authorization": f"Bearer {api_key}"},
        )

    async def close(self) -> None:
        await self._http.aclose()

    async def schedule(self, request: JobRequest, idempotency_key: str | None) -> JobAccepted:
        """POST /schedule."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        answer = await self._send("POST", "/schedule", json=request.model_dump(), headers=headers)
        if answer.status_code in (409, 413, 422):
            raise ScheduleRejectedError(_rejection(answer.status_code), _detail(answer))
        _raise_for_status(answer)
        return JobAccepted.model_validate_json(answer.content)

    async def schedule_batch(self, batch: BatchRequest) -> BatchAccepted:
        """POST /schedule/batch."""
        answer = await self._send(
            "POST",
            "/schedule/batch",
            content=batch.model_dump_json(),
            headers={"content-type": "application/json"},
        )
        if answer.status_code in (409, 413, 422):
            raise ScheduleRejectedError(_rejection(answer.status_code), _detail(answer))
        _raise_for_status(answer)
        return BatchAccepted.model_validate_json(answer.content)

    async def cancel(self, offset: int) -> CancelAccepted:
        """POST /jobs/{offset}/cancel."""
        answer = await self._send("POST", f"/jobs/{offset}/cancel")
        if answer.status_code == 409:
            raise JobFinishedError(offset)
        _raise_for_status(answer, offset)
        return CancelAccepted.model_validate_json(answer.content)

    async def job(self, offset: int) -> JobRecord:
        """GET /jobs/{offset}."""
        answer = await self._send("GET", f"/jobs/{offset}")
        _raise_for_status(answer, offset)
        return JobRecord.model_validate_json(answer.content)

    async def messages(self, offset: int, wait: float = 0, after: int = -1) -> list[JsonValue]:
        """GET /messages/{offset}, long-polling up to `wait` seconds for a seq after `after`."""
        params = {"wait": wait, "after": after} if wait else {}
        answer = await self._send("GET", f"/messages/{offset}", params=params)
        _raise_for_status(answer, offset)
        return _VALUES.validate_json(answer.content)

    async def follow(
        self, offset: int, after: int = -1, timeout: float | None = None
    ) -> AsyncIterator[Reply]:
        """Replies after `after` over SSE until the final one (and `progress` ones meanwhile).

        Once the gateway has answered, a dropped stream, an unreachable gateway or a 502/503/504
        is retried with capped backoff, resuming after the last seq, for up to `timeout`
        seconds in all (None: as long as the caller iterates); then TimeoutError. If the very
        first request fails, that error is raised at once: a wrong URL shows at once.
        """
        deadline = None if timeout is None else asyncio.get_running_loop().time() + timeout
        failures = 0
        connected = False
        while True:
            try:
                async with contextlib.AsyncExitStack() as stack:
                    source = await _within(
                        deadline,
                        stack.enter_async_context(
                            aconnect_sse(
                                self._http,
                                "GET",
                                f"/messages/{offset}/stream",
                                headers={"Last-Event-ID": str(after)},
                            )
                        ),
                    )
                    if source.response.status_code != 200:
                        await _within(deadline, source.response.aread())
                        if not connected or source.response.status_code not in _RETRY_STATUS:
                            _raise_for_status(source.response, offset)
                        raise _NotNow(f"answer {source.response.status_code}")
                    connected = True
                    events = source.aiter_sse()
                    while (event := await _within(deadline, anext(events, None))) is not None:
                        reply = Reply.model_validate_json(event.data)
                        failures = 0
                        if reply.kind is not ReplyKind.PROGRESS:  # a tick is no step done
                            after = reply.seq
                        yield reply
                        if reply.is_final:
                            return
                # NOTE: closed before the final reply: the gateway is stopping, or the job had
                # ended before `after`. Only the job's record tells which.
                ended = await _within(deadline, self._ended_after(offset, after))
                if ended is not None:
                    for reply in ended:
                        yield reply
                    return
                why = "stream closed"
            except (httpx.TransportError, _NotNow) as exc:
                if not connected:
                    raise GatewayUnreachableError(
                        f"cannot reach the jobcast gateway at {self.url} "
                        f"(following offset {offset}): {exc!r}"
                    ) from exc
                why = repr(exc)
            except TimeoutError:
                raise TimeoutError(
                    f"offset {offset}: no final reply within {timeout}s (last seq {after})"
                ) from None
            failures += 1
            logger.info(
                "stream dropped (%s), resuming offset=%s after=%s",
                why,
                offset,
                after,
                extra={"offset": offset, "seq": after},
            )
            await _pause(deadline, failures, offset, timeout, after)

    async def _ended_after(self, offset: int, after: int) -> list[Reply] | None:
        """The replies after `after` if the job has ended; None if it runs (or can't be read)."""
        try:
            record = await self.job(offset)
        except UnavailableError:  # unreachable, or 503: it may be restarting
            return None
        if not record.state.is_final:
            return None
        return [reply for reply in record.replies if reply.seq > after]

    async def _send(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        try:
            return await self._http.request(method, path, **kwargs)  # type: ignore[arg-type]
        except httpx.TransportError as exc:
            raise GatewayUnreachableError(
                f"cannot reach the jobcast gateway at {self.url}: {exc!r}"
            ) from exc


class _NotNow(Exception):
    """The gateway answered, but "not now" (502/503/504)."""


async def _within(deadline: float | None, step: Awaitable[T]) -> T:
    """Await `step`, raising TimeoutError at `deadline` (loop time; None: no deadline)."""
    async with asyncio.timeout_at(deadline):
        return await step


async def _pause(
    deadline: float | None, failures: int, offset: int, timeout: float | None, after: int
) -> None:
    """Back off before reconnecting: doubling from BACKOFF_SECONDS, at most BACKOFF_MAX_SECONDS;
    TimeoutError if the deadline comes first."""
    # NOTE: the exponent is capped too: 2.0 ** failures overflows after ~1000 failures.
    pause = min(BACKOFF_SECONDS * 2.0 ** min(failures, 10), BACKOFF_MAX_SECONDS)
    if deadline is not None:
        left = deadline - asyncio.get_running_loop().time()
        if left <= pause:
            await asyncio.sleep(max(left, 0))
            raise TimeoutError(
                f"offset {offset}: no final reply within {timeout}s (last seq {after})"
            )
    await asyncio.sleep(pause)


def _raise_for_status(answer: httpx.Response, offset: int | None = None) -> None:
    if answer.status_code == 404 and offset is not None:
        raise UnknownOffsetError(offset)
    if answer.status_code == 503:
        raise UnavailableError(f"the gateway is not ready: {_detail(answer)}")
    if answer.status_code in (401, 403):
        raise GatewayUnreachableError(
            f"{answer.status_code} from {answer.request.url}: {_detail(answer)} "
            "(JOBCAST_AUTH=on: set JOBCAST_API_KEY to a key of `jobcast keys add`)"
        )
    if answer.status_code >= 400:
        raise GatewayUnreachableError(
            f"unexpected answer {answer.status_code} from {answer.request.url}: {_detail(answer)}"
        )


def _rejection(status: int) -> str:
    return {409: "idempotency_conflict", 413: "too_large"}.get(status, "invalid_request")


def _detail(answer: httpx.Response) -> str:
    try:
        return str(answer.json().get("detail", answer.text))
    except ValueError:
        return answer.text[:200]
