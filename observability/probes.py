"""Operating endpoints: /health (alive), /ready (broker reachable, ledger writable), /metrics.

The gateway serves them beside its API; a worker serves them alone on JOBCAST_WORKER_PORT.
"""

from collections.abc import Sequence
from typing import Any, Protocol

from fastapi import APIRouter, FastAPI
from fastapi.params import Depends
from fastapi.responses import JSONResponse, Response

from consumer.worker import Worker
from contracts import LedgerUnavailableError
from observability.metrics import Metrics

READY_TIMEOUT_SECONDS = 0.5

METRICS_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Prometheus text format.", "content": {"text/plain": {}}},
    401: {"description": "JOBCAST_AUTH=on and no API key, or one the ledger does not know."},
    403: {"description": "JOBCAST_AUTH=on and the key is revoked or not an admin key."},
}


class Broker(Protocol):
    """What /ready asks of the broker (FastStream's RabbitBroker)."""

    async def ping(self, timeout: float | None) -> bool: ...


class Recording(Protocol):
    """What /ready asks of the reply recorder."""

    @property
    def stalled(self) -> bool: ...


class Pingable(Protocol):
    """What /ready asks of the ledger."""

    async def ping(self) -> None: ...


def router(
    broker: Broker,
    metrics: Metrics,
    *,
    worker: Worker | None = None,
    recorder: Recording | None = None,
    ledger: Pingable | None = None,
    metrics_guard: Sequence[Depends] = (),
) -> APIRouter:
    """/health, /ready and /metrics of a process with these parts (a worker has no recorder
    and no ledger; a gateway without `serve`'s worker has no worker)."""
    routes = APIRouter(tags=["operations"])

    @routes.get("/health")
    async def health() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok"}

    @routes.get("/ready", responses={503: {"description": "Broker or ledger unavailable."}})
    async def ready() -> JSONResponse:
        """Ready to take jobs: RabbitMQ connected, the ledger answering, replies being recorded,
        and not draining."""
        checks = {"broker": await broker.ping(timeout=READY_TIMEOUT_SECONDS)}
        if worker is not None:  # a draining worker (SIGTERM) takes no new jobs
            checks["accepting_jobs"] = not worker.stopping.is_set()
        if recorder is not None:  # replies must be getting stored, not piling up
            checks["recording"] = not recorder.stalled
        if ledger is not None:  # a worker has no ledger of its own
            try:
                await ledger.ping()
                checks["ledger"] = True
            except LedgerUnavailableError:
                checks["ledger"] = False
        ok = all(checks.values())
        return JSONResponse({"ready": ok, **checks}, status_code=200 if ok else 503)

    @routes.get(
        "/metrics",
        name="metrics",
        response_class=Response,
        responses=METRICS_RESPONSES,
        dependencies=list(metrics_guard),  # the gateway's: an admin API key with JOBCAST_AUTH=on
    )
    async def scrape() -> Response:
        """Counters, gauges and histograms of this process, for Prometheus to scrape."""
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    return routes


def create_ops_app(
    broker: Broker, metrics: Metrics, worker: Worker, *, recorder: Recording | None = None
) -> FastAPI:
    """A worker's own small HTTP app: /health, /ready and /metrics only."""
    app = FastAPI(title="jobcast worker", openapi_url=None, docs_url=None, redoc_url=None)
    app.include_router(router(broker, metrics, worker=worker, recorder=recorder))
    return app
