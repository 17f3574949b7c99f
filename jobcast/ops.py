"""Operating endpoints: /health (alive) and /ready (broker reachable, ledger writable)."""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from contracts import LedgerUnavailableError

router = APIRouter(tags=["operations"])

READY_TIMEOUT_SECONDS = 0.5


@router.get("/health")
async def health() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/ready", responses={503: {"description": "Broker or ledger unavailable."}})
async def ready(request: Request) -> JSONResponse:
    """Ready to take jobs: RabbitMQ connected and the ledger answering."""
    checks = {
        "broker": await request.app.state.broker.ping(timeout=READY_TIMEOUT_SECONDS),
        "ledger": True,
    }
    try:
        await request.app.state.ledger.ping()
    except LedgerUnavailableError:
        checks["ledger"] = False
    ok = all(checks.values())
    return JSONResponse({"ready": ok, **checks}, status_code=200 if ok else 503)
