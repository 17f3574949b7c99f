"""One worker runs many jobs at once: slow steps overlap instead of queueing."""

import httpx
import pytest

from jobcast.gateway import create_app
from jobcast.settings import Settings
from tests.integration import rendezvous_pipelines
from tests.support.waiting import eventually


@pytest.mark.parametrize("concurrency", [5, 64])
async def test_steps_of_different_jobs_run_at_the_same_time(amqp_url, sqlite_url, concurrency):
    rendezvous_pipelines.arrived.clear()
    rendezvous_pipelines.everyone_here.clear()
    settings = Settings(
        amqp_url=amqp_url,
        database_url=sqlite_url,
        worker_concurrency=concurrency,
        pipelines=["tests.integration.rendezvous_pipelines"],
        step_attempts=1,
    )
    app = create_app(settings, with_worker=True)
    job = {"deployment": "d", "framework": "f", "fn": "rendezvous"}
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://jobcast"
        ) as http,
    ):
        offsets = [(await http.post("/schedule", json=job)).json()["offset"] for _ in range(5)]
        for offset in offsets:
            # each step only returns once all five jobs were inside it together
            await eventually(
                lambda o=offset: _state(http, o),
                until=lambda s: s != "queued" and s != "running",
                timeout=30,
                what=f"job {offset} finished",
            )
            assert (await http.get(f"/jobs/{offset}")).json()["state"] == "done"


async def _state(http: httpx.AsyncClient, offset: int) -> str:
    return str((await http.get(f"/jobs/{offset}")).json()["state"])
