"""The client's HTTP transport: POST /schedule, GET /jobs, and the SSE stream."""

import asyncio
import logging
from collections.abc import AsyncIterator

import httpx
from httpx_sse import aconnect_sse
from pydantic import JsonValue, TypeAdapter

from client.errors import GatewayUnreachableError, ScheduleRejectedError
from contracts import (
    JobAccepted,
    JobRecord,
    JobRequest,
    JobState,
    Reply,
    UnavailableError,
    UnknownOffsetError,
)

logger = logging.getLogger(__name__)

_VALUES = TypeAdapter(list[JsonValue])

RECONNECTS = 5
"""Consecutive failed reconnects of a stream before `follow` gives up."""


class HttpTransport:
    """Talks to one gateway over HTTP; maps its answers to contract objects and errors."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        # NOTE: streams stay quiet between steps; the server pings every 15 s.
        self._http = httpx.AsyncClient(
            base_url=self.url, timeout=httpx.Timeout(timeout, read=max(timeout, 45.0))
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

    async def follow(self, offset: int, after: int = -1) -> AsyncIterator[Reply]:
        """Replies after `after` over SSE, reconnecting with Last-Event-ID if the stream drops."""
        failures = 0
        connected = False
        while True:
            try:
                async with aconnect_sse(
                    self._http,
                    "GET",
                    f"/messages/{offset}/stream",
                    headers={"Last-Event-ID": str(after)},
                ) as source:
                    connected = True
                    if source.response.status_code != 200:
                        await source.response.aread()
                        _raise_for_status(source.response, offset)
                    async for event in source.aiter_sse():
                        reply = Reply.model_validate_json(event.data)
                        failures = 0
                        after = reply.seq
                        yield reply
                        if reply.is_final:
                            return
                # NOTE: closed before the final reply: the gateway is stopping, or the job had
                # ended before `after`. Only the job's record tells which.
                ended = await self._ended_after(offset, after)
                if ended is not None:
                    for reply in ended:
                        yield reply
                    return
                failures += 1
                await asyncio.sleep(min(0.2 * 2**failures, 5.0))
            except httpx.TransportError as exc:
                failures += 1
                if not connected or failures > RECONNECTS:
                    raise GatewayUnreachableError(
                        f"cannot reach the jobcast gateway at {self.url} "
                        f"(following offset {offset}): {exc!r}"
                    ) from exc
                logger.info(
                    "stream dropped, resuming offset=%s after=%s",
                    offset,
                    after,
                    extra={"offset": offset, "seq": after},
                )
                await asyncio.sleep(min(0.2 * 2**failures, 5.0))

    async def _ended_after(self, offset: int, after: int) -> list[Reply] | None:
        """The replies after `after` if the job has ended; None if it runs (or can't be read)."""
        try:
            record = await self.job(offset)
        except GatewayUnreachableError:
            return None
        if record.state not in (JobState.DONE, JobState.FAILED):
            return None
        return [reply for reply in record.replies if reply.seq > after]

    async def _send(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        try:
            return await self._http.request(method, path, **kwargs)  # type: ignore[arg-type]
        except httpx.TransportError as exc:
            raise GatewayUnreachableError(
                f"cannot reach the jobcast gateway at {self.url}: {exc!r}"
            ) from exc


def _raise_for_status(answer: httpx.Response, offset: int | None = None) -> None:
    if answer.status_code == 404 and offset is not None:
        raise UnknownOffsetError(offset)
    if answer.status_code == 503:
        raise UnavailableError(f"the gateway is not ready: {_detail(answer)}")
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
