"""The worker process: run jobs until SIGTERM, then drain and hand the rest back."""

import asyncio
import logging
import signal

from consumer.handlers import worker_router
from jobcast.bootstrap import build_worker, create_broker, start_broker
from jobcast.settings import Settings

logger = logging.getLogger(__name__)


async def run_worker(settings: Settings) -> None:
    """Consume jobcast.jobs until SIGTERM or SIGINT; BrokerUnavailableError if unreachable."""
    worker = build_worker(settings)
    broker = create_broker(settings, [worker_router(worker)])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await start_broker(broker, settings)
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
        worker.stopping.set()
        await broker.stop()
        logger.info("worker stopped")
