"""Edges of the HTTP contract the fault suite found: never a 500 for a bad request."""

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from faststream.rabbit import TestRabbitBroker

from jobcast.gateway import create_app
from jobcast.settings import Settings


@pytest.fixture
async def http(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'l.db'}", step_seconds=0))
    async with TestRabbitBroker(app.state.broker):
        await app.state.ledger.open()
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://jobcast") as client:
            yield client
        await app.state.ledger.close()


async def test_a_body_that_is_not_utf8_is_malformed_json_422(http):
    answer = await http.post(
        "/schedule", content=b'{"fn": "\xff"}', headers={"content-type": "application/json"}
    )
    assert answer.status_code == 422
    assert "UTF-8" in answer.json()["detail"]


@pytest.mark.parametrize("path", ["/messages/{}", "/jobs/{}", "/messages/0?wait=1&after={}"])
async def test_numbers_too_large_for_the_ledger_are_422_not_500(http, path):
    answer = await http.get(path.format(10**30))
    assert answer.status_code == 422, answer.text


async def test_a_streamed_body_over_the_limit_is_413(tmp_path):
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'l.db'}", max_body_bytes=1024))

    async def chunks():  # no Content-Length: the limit is enforced while the body streams
        for _ in range(4):
            yield b" " * 512

    async with TestRabbitBroker(app.state.broker):
        await app.state.ledger.open()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://jobcast") as http:
            answer = await http.post(
                "/schedule", content=chunks(), headers={"content-type": "application/json"}
            )
        await app.state.ledger.close()
    assert answer.status_code == 413
    assert "1024" in answer.json()["detail"]
