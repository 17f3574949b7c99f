"""A tiny test-side reader of Server-Sent Events (to check the wire format itself)."""

from dataclasses import dataclass

import httpx
import orjson


@dataclass
class Event:
    id: str
    event: str
    data: dict[str, object]


async def read_events(
    http: httpx.AsyncClient,
    path: str,
    headers: dict[str, str] | None = None,
    limit: int | None = None,
) -> list[Event]:
    """Every event until the server closes the stream (or `limit` events)."""
    events: list[Event] = []
    fields: dict[str, str] = {}
    async with http.stream("GET", path, headers=headers) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            if not line:
                if "data" in fields:
                    events.append(
                        Event(
                            fields.get("id", ""),
                            fields.get("event", "message"),
                            orjson.loads(fields["data"]),
                        )
                    )
                    if limit is not None and len(events) >= limit:
                        break
                fields = {}
            elif not line.startswith(":"):
                key, _, value = line.partition(":")
                fields[key] = value.removeprefix(" ")
    return events
