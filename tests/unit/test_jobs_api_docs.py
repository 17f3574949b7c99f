"""The jobs API in OpenAPI: GET /jobs, /jobs/stream and /stats with their response models and
errors, and the tags of a JobRequest with their bounds, so the page and other callers can code
against the document."""

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from jobcast.gateway import create_app
from jobcast.settings import Settings


@pytest.fixture
async def spec(tmp_path: Path) -> AsyncIterator[dict[str, object]]:
    # NOTE: no lifespan: neither broker nor ledger is needed to serve the document.
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'l.db'}"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://jobcast") as client:
        yield (await client.get("/openapi.json")).json()


def test_the_list_the_feed_and_the_stats_are_documented_with_models_and_errors(spec):
    paths = spec["paths"]
    listing = paths["/jobs"]["get"]
    assert {"200", "422", "503"} <= set(listing["responses"])
    assert listing["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/JobPage"
    }
    assert {p["name"] for p in listing["parameters"]} == {
        "state",
        "fn",
        "tag",
        "since",
        "until",
        "limit",
        "cursor",
    }
    limit = next(p for p in listing["parameters"] if p["name"] == "limit")
    assert (limit["schema"]["maximum"], limit["schema"]["default"]) == (500, 50)
    feed = paths["/jobs/stream"]["get"]
    assert "text/event-stream" in feed["responses"]["200"]["content"]
    assert {p["name"] for p in feed["parameters"]} == {
        "state",
        "fn",
        "tag",
        "after",
        "last-event-id",
    }
    stats = paths["/stats"]["get"]
    assert stats["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Stats"
    }
    schemas = spec["components"]["schemas"]
    row = schemas["JobRow"]["properties"]
    assert set(row) == {
        "offset",
        "fn",
        "state",
        "tags",
        "steps",
        "created_at",
        "updated_at",
        "duration_seconds",
        "error",
    }
    assert {"jobs_waiting", "workers", "dead_letters", "completed_per_minute"} <= set(
        schemas["Stats"]["properties"]
    )


def test_a_job_requests_tags_are_optional_and_bounded(spec):
    request = spec["components"]["schemas"]["JobRequest"]
    assert "tags" not in request.get("required", [])
    tags = request["properties"]["tags"]
    assert tags["maxItems"] == 8
    assert tags["items"]["maxLength"] == 64
    assert tags["items"]["pattern"] == "^[A-Za-z0-9_.:/-]+$"
