"""Operating endpoints: /health (alive), /ready (broker reachable, ledger writable), /metrics.

The gateway serves them beside its API; a worker serves them alone on JOBCAST_WORKER_PORT.
"""

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from faststream.rabbit import RabbitBroker

from consumer.worker import Worker
from contracts import LedgerUnavailableError
from jobcast.metrics import Metrics

router = APIRouter(tags=["operations"])

READY_TIMEOUT_SECONDS = 0.5


@router.get("/health")
async def health() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/ready", responses={503: {"description": "Broker or ledger unavailable."}})
async def ready(request: Request) -> JSONResponse:
    """Ready to take jobs: RabbitMQ connected, the ledger answering, replies being recorded,
    and not draining."""
    checks = {"broker": await request.app.state.broker.ping(timeout=READY_TIMEOUT_SECONDS)}
    worker = getattr(request.app.state, "worker", None)
    if worker is not None:  # a draining worker (SIGTERM) takes no new jobs
        checks["accepting_jobs"] = not worker.stopping.is_set()
    recorder = getattr(request.app.state, "recorder", None)
    if recorder is not None:  # replies must be getting stored, not piling up
        checks["recording"] = not recorder.stalled
    ledger = getattr(request.app.state, "ledger", None)
    if ledger is not None:  # a worker has no ledger of its own
        try:
            await ledger.ping()
            checks["ledger"] = True
        except LedgerUnavailableError:
            checks["ledger"] = False
    ok = all(checks.values())
    return JSONResponse({"ready": ok, **checks}, status_code=200 if ok else 503)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"description": "Prometheus text format.", "content": {"text/plain": {}}}},
)
async def metrics(request: Request) -> Response:
    """Counters, gauges and histograms of this process, for Prometheus to scrape."""
    body, content_type = request.app.state.metrics.render()
    return Response(body, media_type=content_type)


def create_ops_app(broker: RabbitBroker, metrics: Metrics, worker: Worker) -> FastAPI:
    """A worker's own small HTTP app: /health, /ready and /metrics only."""
    app = FastAPI(title="jobcast worker", openapi_url=None, docs_url=None, redoc_url=None)
    app.state.broker = broker
    app.state.worker = worker
    app.state.metrics = metrics
    app.include_router(router)
    return app
