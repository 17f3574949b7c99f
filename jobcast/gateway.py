"""The gateway process: HTTP API, AMQP intake and query handler (and in `serve`, a worker)."""

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from contracts import IdempotencyConflictError, UnavailableError, UnknownOffsetError
from contracts.topology import SCHEDULE_QUEUE
from jobcast import asyncapi, ops
from jobcast.bootstrap import (
    build_worker,
    connect,
    create_broker,
    job_consumer,
    job_publisher,
    signer,
    start_broker,
)
from jobcast.limits import BodySizeLimit
from jobcast.metrics import Metrics
from jobcast.settings import Settings
from jobcast.tracing import TraceRequests, setup_tracing
from jobcast.tracking import broker_middlewares, consuming
from jobcast.validation import short_errors
from ledger import open_ledger
from ledger.postgres import PostgresLedger
from messaging.dead_letters import dead_letters_via
from messaging.publishing import ConfirmedChannel
from producer import http as producer_http
from producer.intake import Intake
from producer.service import Scheduler
from query import http as query_http
from query import stream as query_stream
from query.handlers import query_router, reply_recorder
from query.live import ReplyHub
from query.service import Results

logger = logging.getLogger(__name__)


def create_app(settings: Settings, *, with_worker: bool = False) -> FastAPI:
    """The gateway as an ASGI app; `with_worker` also runs jobs in this process (quickstart)."""
    ledger = open_ledger(settings.database_url)
    metrics = Metrics()
    tracing = setup_tracing(settings, "jobcast-gateway")
    results = Results(ledger, ReplyHub())
    # NOTE: on PostgreSQL other gateways store replies too: this one hears of them (LISTEN).
    listener = (
        ledger.reply_listener(results.hub.notify, results.hub.ring_all)
        if isinstance(ledger, PostgresLedger)
        else None
    )
    routers = [query_router(results)]
    signing = signer(settings)
    worker = build_worker(settings, signing) if with_worker else None
    middlewares = broker_middlewares(metrics)
    if tracing is not None:  # outermost, so every log line and count sits inside the span
        middlewares = [*tracing.broker_middlewares(), *middlewares]
    broker = create_broker(settings, routers, middlewares)
    jobs = ConfirmedChannel()
    if tracing is not None:
        jobs.around = tracing.publish_span
    publish_job = metrics.count_scheduled(job_publisher(jobs, broker, settings, signing))
    if tracing is not None:
        publish_job = tracing.carry(publish_job)
    scheduler = Scheduler(ledger, publish_job)
    span = tracing.consume_span if tracing is not None else None
    intake = Intake(
        scheduler,
        dead_letters_via(broker, SCHEDULE_QUEUE),
        around=consuming(metrics, SCHEDULE_QUEUE.name, span),
    )
    jobs_consumer = job_consumer(worker, broker, metrics, tracing) if worker is not None else None
    recorder = reply_recorder(
        broker,
        results,
        metrics.time_writes(ledger.store_replies),
        signing,
        prefetch=settings.ledger_prefetch,
        observe=metrics.recorded if tracing is None else tracing.recorded_spans(metrics.recorded),
    )

    async def stop_worker() -> None:
        if worker is not None and jobs_consumer is not None:
            worker.stopping.set()
            await jobs_consumer.stop(timeout=settings.grace_seconds or None)

    drain = once(stop_worker)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await ledger.open()
        if listener is not None:
            listener.start()
        recording = None
        try:
            attach = [jobs.start, intake.start]
            if worker is not None and jobs_consumer is not None:
                attach += [worker.replies.start, jobs_consumer.start]
            await start_broker(broker, settings, attach)
            # NOTE: a connection of its own, so replies published by an in-process worker while
            # the broker drains it on shutdown are still stored and acked.
            recording = await connect(settings)
            await recorder.start(recording)
            logger.info(
                "gateway ready on %s:%s (worker in process: %s)",
                settings.host,
                settings.port,
                worker is not None,
            )
            yield
        finally:
            # NOTE: side by side, so shutdown takes one grace period, not one per consumer.
            # Under `serve` the worker has usually drained already, while HTTP still answered.
            await asyncio.gather(intake.stop(timeout=settings.grace_seconds or None), drain())
            await broker.stop()
            await recorder.stop(timeout=settings.grace_seconds or None)
            if recording is not None:
                await recording.close()
            await jobs.close()
            if worker is not None:
                await worker.replies.close()
            if listener is not None:
                await listener.stop()
            await ledger.close()
            if tracing is not None:
                tracing.shutdown()

    app = FastAPI(
        title="jobcast",
        summary="Hand long-running jobs to RabbitMQ and follow every step of them live.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.scheduler = scheduler
    app.state.results = results
    app.state.recorder = recorder
    app.state.broker = broker
    app.state.ledger = ledger
    app.state.worker = worker
    # NOTE: on SIGTERM, `serve` runs this before HTTP stops (cli.py): the in-process worker's
    # steps finish and the rest is handed back while reads and streams still answer.
    app.state.drain = drain
    app.state.metrics = metrics
    app.include_router(producer_http.router)
    app.include_router(query_http.router)
    app.include_router(query_stream.router)
    app.include_router(asyncapi.router)
    app.include_router(ops.router)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    if tracing is not None:
        app.add_middleware(TraceRequests, tracing=tracing)
    install_error_handlers(app)
    return app


def once(stop: Callable[[], Awaitable[None]]) -> Callable[[], "asyncio.Future[None]"]:
    """`stop` started on the first call; every call returns that one run, to await."""
    started: list[asyncio.Future[None]] = []

    def start() -> "asyncio.Future[None]":
        if not started:
            started.append(asyncio.ensure_future(stop()))
        return started[0]

    return start


_UNDECODABLE_BODY = "There was an error parsing the body"


def install_error_handlers(app: FastAPI) -> None:
    """Map domain errors to HTTP answers: never a 500 for something we know about."""

    @app.exception_handler(UnknownOffsetError)
    async def not_found(_: Request, exc: UnknownOffsetError) -> Response:
        return JSONResponse({"detail": "Offset not found"}, status_code=404)

    @app.exception_handler(IdempotencyConflictError)
    async def conflict(_: Request, exc: IdempotencyConflictError) -> Response:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(UnavailableError)
    async def unavailable(_: Request, exc: UnavailableError) -> Response:
        return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "1"})

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> Response:
        # NOTE: not FastAPI's own 422, which echoes all of each error's input (see validation.py).
        return JSONResponse({"detail": short_errors(exc.errors())}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        # NOTE: FastAPI answers 400 when it cannot even decode the body (not UTF-8); to a
        # caller that is malformed JSON like any other, so it gets the same 422.
        if exc.status_code == 400 and exc.detail == _UNDECODABLE_BODY:
            return JSONResponse({"detail": "request body is not valid UTF-8 JSON"}, status_code=422)
        return await http_exception_handler(request, exc)
