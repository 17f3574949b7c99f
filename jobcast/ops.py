"""Operating endpoints: /health (alive) and /ready (broker reachable, ledger writable)."""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from contracts import LedgerUnavailableError
from jobcast.bootstrap import broker_connected

router = APIRouter(tags=["operations"])


@router.get("/health")
async def health() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/ready", responses={503: {"description": "Broker or ledger unavailable."}})
async def ready(request: Request) -> JSONResponse:
    """Ready to take jobs: RabbitMQ connected and the ledger answering."""
    checks = {"broker": broker_connected(request.app.state.broker), "ledger": True}
    try:
        await request.app.state.ledger.ping()
    except LedgerUnavailableError:
        checks["ledger"] = False
    ok = all(checks.values())
    return JSONResponse({"ready": ok, **checks}, status_code=200 if ok else 503)
