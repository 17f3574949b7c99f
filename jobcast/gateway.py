"""The gateway process: HTTP API, AMQP intake, reply recorder and progress responder (and in
`serve`, a worker)."""

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI
from starlette.middleware import Middleware

from contracts.topology import LEDGER_QUEUE, PROGRESS_QUEUE, SCHEDULE_QUEUE
from jobcast import asyncapi
from jobcast.bootstrap import (
    JobPublisher,
    WorkerPart,
    connect,
    create_broker,
    signer,
    start_broker,
)
from jobcast.http.body_limit import BodySizeLimit
from jobcast.http.errors import install_error_handlers
from jobcast.settings import Settings
from ledger import Ledger, open_ledger
from ledger.notifications import ReplyListener
from ledger.postgres import PostgresLedger
from messaging.dead_letters import dead_letters_via
from messaging.publishing import ConfirmedChannel
from observability import probes
from observability.hooks import Hooks
from observability.metrics import Metrics
from observability.tracing import setup_tracing
from producer import http as producer_http
from producer.intake import Intake
from producer.service import Scheduler
from query import http as query_http
from query import stream as query_stream
from query.handlers import query_router
from query.live import ReplyHub
from query.recorder import ReplyRecorder
from query.service import Results

logger = logging.getLogger(__name__)


def create_app(settings: Settings, *, with_worker: bool = False) -> FastAPI:
    """The gateway as an ASGI app; `with_worker` also runs jobs in this process (quickstart)."""
    signing = signer(settings)
    hooks = Hooks(Metrics(), setup_tracing(settings, "jobcast-gateway"))
    ledger = open_ledger(settings.database_url)
    results = Results(ledger, ReplyHub())
    listener = reply_listener(ledger, results)
    broker = create_broker(
        settings, [query_router(results, around=hooks.consuming(PROGRESS_QUEUE))]
    )
    jobs = JobPublisher(ConfirmedChannel(around=hooks.publishing), settings, signing)
    scheduler = Scheduler(ledger, hooks.scheduled(jobs))
    intake = Intake(
        scheduler,
        hooks.dead_letters(SCHEDULE_QUEUE, dead_letters_via(broker, SCHEDULE_QUEUE)),
        around=hooks.consuming(SCHEDULE_QUEUE),
    )
    recorder = ReplyRecorder(
        hooks.store_timed(ledger.store_replies),
        results.hub,
        hooks.dead_letters(LEDGER_QUEUE, dead_letters_via(broker, LEDGER_QUEUE)),
        signing,
        prefetch=settings.ledger_prefetch,
        observe=hooks.recorded(),
    )
    worker = WorkerPart(settings, signing, broker, hooks) if with_worker else None
    grace = settings.grace_seconds or None

    async def stop_worker() -> None:
        if worker is not None:
            await worker.drain()

    # NOTE: on SIGTERM, `serve` runs this before HTTP stops (cli.py): the in-process worker's
    # steps finish and the rest is handed back while reads and streams still answer.
    drain = once(stop_worker)

    async def stop_consuming() -> None:
        # NOTE: side by side, so shutdown takes one grace period, not one per consumer.
        # Under `serve` the worker has usually drained already, while HTTP still answered.
        await asyncio.gather(intake.stop(timeout=grace), drain())

    async def stop_recording() -> None:
        await recorder.stop(timeout=grace)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # NOTE: each part's stop is pushed before it starts, so a start that fails half-way
        # stops what did start; they run in reverse: consumers, broker, recorder, ledger.
        async with AsyncExitStack() as stack:
            stack.callback(hooks.tracing.shutdown)
            await ledger.open()
            stack.push_async_callback(ledger.close)
            if listener is not None:
                listener.start()
                stack.push_async_callback(listener.stop)
            if worker is not None:
                stack.push_async_callback(worker.close)
            stack.push_async_callback(jobs.close)
            # NOTE: a connection of its own, so replies published by an in-process worker
            # while the broker drains it on shutdown are still stored and acked.
            recording = await connect(settings)
            stack.push_async_callback(recording.close)
            stack.push_async_callback(stop_recording)
            stack.push_async_callback(broker.stop)
            stack.push_async_callback(stop_consuming)
            attach = [jobs.start, intake.start, *(worker.attach if worker is not None else [])]
            await start_broker(broker, settings, attach)
            await recorder.start(recording)
            logger.info(
                "gateway ready on %s:%s (worker in process: %s)",
                settings.host,
                settings.port,
                worker is not None,
            )
            yield

    app = FastAPI(
        title="jobcast",
        summary="Hand long-running jobs to RabbitMQ and follow every step of them live.",
        version="0.1.0",
        lifespan=lifespan,
        # NOTE: tracing outermost, so every log line and count sits inside the request's span.
        middleware=[
            *hooks.tracing.http_middleware(),
            Middleware(BodySizeLimit, max_bytes=settings.max_body_bytes),
        ],
    )
    app.include_router(producer_http.router(scheduler))
    app.include_router(query_http.router(results))
    app.include_router(query_stream.router(results))
    app.include_router(asyncapi.router)
    app.include_router(
        probes.router(
            broker,
            hooks.metrics,
            worker=worker.worker if worker is not None else None,
            recorder=recorder,
            ledger=ledger,
        )
    )
    install_error_handlers(app)
    # NOTE: the routes get their parts by closure; these are for the process entry point
    # (cli.py drains before HTTP stops) and for tests that reach a part directly.
    app.state.drain = drain
    app.state.broker = broker
    app.state.ledger = ledger
    app.state.scheduler = scheduler
    app.state.results = results
    return app


def reply_listener(ledger: Ledger, results: Results) -> ReplyListener | None:
    """On PostgreSQL other gateways store replies too: this one hears of them (LISTEN) and
    wakes its followers; None on SQLite (one gateway per file)."""
    if not isinstance(ledger, PostgresLedger):
        return None
    return ledger.reply_listener(results.hub.notify, results.hub.ring_all)


def once(stop: Callable[[], Awaitable[None]]) -> Callable[[], "asyncio.Future[None]"]:
    """`stop` started on the first call; every call returns that one run, to await."""
    started: list[asyncio.Future[None]] = []

    def start() -> "asyncio.Future[None]":
        if not started:
            started.append(asyncio.ensure_future(stop()))
        return started[0]

    return start
