"""The worker process: run jobs until SIGTERM, then drain and hand the rest back."""

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterator

import uvicorn

from jobcast.bootstrap import WorkerPart, create_broker, signer, start_broker
from jobcast.http import server_limits
from jobcast.settings import Settings
from observability.hooks import Hooks
from observability.metrics import Metrics
from observability.probes import create_ops_app
from observability.tracing import setup_tracing

logger = logging.getLogger(__name__)


async def run_worker(settings: Settings) -> None:
    """Consume jobcast.jobs until SIGTERM or SIGINT; BrokerUnavailableError if unreachable."""
    hooks = Hooks(Metrics(), setup_tracing(settings, "jobcast-worker"))
    broker = create_broker(settings)
    part = WorkerPart(settings, signer(settings), broker, hooks)
    worker = part.worker
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await start_broker(broker, settings, attach=part.attach)
    ops = None
    if settings.worker_port:
        ops = _OpsServer(create_ops_app(broker, hooks.metrics, worker), settings)
    serving = asyncio.create_task(ops.serve()) if ops is not None else None
    logger.info(
        "worker consuming; pipelines: %s; concurrency %s",
        ", ".join(worker.registry.names()),
        worker.concurrency,
    )
    try:
        await stop.wait()
    finally:
        logger.info(
            "worker stopping: %s job(s) in flight finish their step, then go back", worker.in_flight
        )
        await part.drain()
        await broker.stop()
        await part.close()
        if ops is not None and serving is not None:
            ops.should_exit = True
            await serving
        hooks.tracing.shutdown()
        logger.info("worker stopped")


class _OpsServer(uvicorn.Server):
    """uvicorn for the worker's /health, /ready and /metrics, on JOBCAST_WORKER_PORT.

    The worker owns SIGTERM (it drains jobs first), so this server installs no signal handlers.
    """

    def __init__(self, app: object, settings: Settings) -> None:
        super().__init__(
            uvicorn.Config(
                app,  # type: ignore[arg-type]
                host=settings.host,
                port=settings.worker_port,
                log_config=None,
                access_log=False,
                lifespan="off",
                **server_limits.server_options(settings),
            )
        )

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield
