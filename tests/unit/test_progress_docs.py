"""Progress is documented where a user looks: the OpenAPI of GET /jobs/{offset} and of the
stream, and the Reply schema of the AsyncAPI document."""

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import yaml

from jobcast.gateway import create_app
from jobcast.settings import Settings

ROOT = Path(__file__).parents[2]


@pytest.fixture
async def openapi(tmp_path: Path) -> AsyncIterator[dict[str, object]]:
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'l.db'}"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://jobcast") as client:
        yield (await client.get("/openapi.json")).json()


async def test_get_jobs_documents_the_latest_progress(openapi):
    schemas = openapi["components"]["schemas"]
    progress = schemas["JobRecord"]["properties"]["progress"]
    assert {"$ref": "#/components/schemas/ProgressReport"} in progress["anyOf"]
    report = schemas["ProgressReport"]
    assert set(report["properties"]) == {"current", "total", "message", "seq", "produced_at"}
    assert report["properties"]["message"]["anyOf"][0]["maxLength"] == 200


async def test_the_stream_documents_progress_events_without_an_id(openapi):
    stream = openapi["paths"]["/messages/{offset}/stream"]["get"]["responses"]["200"]
    assert "events of type `progress`" in stream["description"]
    assert "carry no `id`" in stream["description"]
    example = stream["content"]["text/event-stream"]["example"]
    assert example.startswith("event: progress\ndata: ")


def test_the_asyncapi_reply_schema_names_the_progress_kind():
    document = yaml.safe_load((ROOT / "docs" / "asyncapi.yaml").read_text())
    schemas = document["components"]["schemas"]
    assert "progress" in schemas["ReplyKind"]["enum"]
    assert "StepProgress" in schemas["Reply"]["properties"]["value"]["description"]
    assert "Except `progress`" in schemas["Reply"]["description"]
