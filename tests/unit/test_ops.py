"""Probes: a worker that is draining after SIGTERM is alive but not ready."""

import httpx

from consumer.pipelines import Registry
from consumer.worker import Worker
from contracts.signing import Signer
from observability.metrics import Metrics
from observability.probes import create_ops_app


class ReachableBroker:
    async def ping(self, timeout: float) -> bool:
        return True


async def test_a_draining_worker_is_alive_but_not_ready():
    worker = Worker(registry=Registry(), signer=Signer("test key"))
    app = create_ops_app(ReachableBroker(), Metrics(), worker)  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://worker") as http:
        assert (await http.get("/ready")).status_code == 200
        worker.stopping.set()  # SIGTERM
        draining = await http.get("/ready")
        assert draining.status_code == 503
        assert draining.json() == {"ready": False, "broker": True, "accepting_jobs": False}
        assert (await http.get("/health")).status_code == 200


class StalledRecorder:
    stalled = True


async def test_a_gateway_whose_recorder_cannot_make_progress_is_not_ready():
    app = create_ops_app(
        ReachableBroker(), Metrics(), Worker(Registry(), Signer("k")), recorder=StalledRecorder()
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as http:
        answer = await http.get("/ready")
    assert answer.status_code == 503
    assert answer.json()["recording"] is False
