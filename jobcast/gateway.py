"""The gateway process: HTTP API, AMQP intake, reply recorder and progress responder (and in
`serve`, a worker)."""

import asyncio
import ipaddress
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import Depends, FastAPI
from starlette.middleware import Middleware

from contracts.topology import (
    BATCH_QUEUE,
    CANCEL_QUEUE,
    HANDBACK_QUEUE,
    LEDGER_QUEUE,
    PROGRESS_QUEUE,
    SCHEDULE_QUEUE,
)
from jobcast import asyncapi, dashboard, webclient
from jobcast.bootstrap import (
    Attach,
    JobPublisher,
    WorkerPart,
    connect,
    create_broker,
    signer,
    start_broker,
)
from jobcast.http.auth import AUTH_ERRORS, Authenticator
from jobcast.http.body_limit import BodySizeLimit
from jobcast.http.cors import cors_middleware
from jobcast.http.errors import install_error_handlers
from jobcast.http.read_tokens import ReadGate, token_key, token_of
from jobcast.http.read_tokens import router as tokens_router
from jobcast.settings import Settings
from jobcast.steering import ControlAnnouncer
from ledger import Ledger, open_ledger
from ledger.notifications import ReplyListener
from ledger.postgres import PostgresLedger
from ledger.retention import Purger
from messaging.answers import Answers
from messaging.dead_letters import dead_letters_via
from messaging.publishing import ConfirmedChannel
from messaging.queue_figures import QueueCounter
from observability import probes
from observability.hooks import Hooks
from observability.metrics import Metrics
from observability.tracing import setup_tracing
from producer import http as producer_http
from producer.admission import Admission
from producer.batch_http import BATCH_PATH
from producer.batch_http import router as batch_router
from producer.batch_intake import BatchIntake
from producer.batches import BatchScheduler
from producer.cancel_intake import CancelIntake
from producer.cancelling import Canceller
from producer.handbacks import HandBackRelay
from producer.intake import Intake
from producer.rate_limit import RateLimit, RateLimiter
from producer.release import Releaser
from producer.scheduler import Scheduler
from producer.submitters import Submitters
from query import http as query_http
from query import listing_http
from query import sse as query_sse
from query.feed_slots import FeedSlots
from query.listing import Listing
from query.progress_responder import query_router
from query.recorder import ReplyRecorder
from query.results import Results
from query.retention_http import router as retention_router
from query.wakeups import ReplyHub

logger = logging.getLogger(__name__)


class Gateway:
    """The parts of one gateway, each built whole from Settings; `running()` starts them and
    stops them in order."""

    def __init__(self, settings: Settings, *, with_worker: bool = False) -> None:
        signing = signer(settings)
        self.settings = settings
        self.hooks = hooks = Hooks(Metrics(), setup_tracing(settings, "jobcast-gateway"))
        self.ledger = ledger = open_ledger(settings.database_url)
        self.auth = Authenticator(ledger, enabled=settings.auth == "on")
        self.read_gate: ReadGate | None = None
        self.submitters: Submitters | None = None
        if settings.auth == "on":
            key = settings.signing_key.get_secret_value() if settings.signing_key else None
            self.read_gate = ReadGate(token_key(key), ledger, settings.read_token_ttl)
            self.auth.other_token = self.read_gate.principal
            self.auth.token_of = token_of
            self.submitters = Submitters(ledger.key_by_digest, ledger.job_owner)
        self.feed_slots = FeedSlots(settings.max_feeds_per_key)
        limit = RateLimit.parse(settings.rate_limit)
        self.rate_limiter = (
            RateLimiter(limit, limited=hooks.metrics.rate_limited.inc) if limit else None
        )
        self.admission = Admission(
            self.rate_limiter, self.read_gate.mint_token if self.read_gate else None
        )
        self.results = results = Results(ledger, ReplyHub())
        self.listener = reply_listener(ledger, results)
        self.queues = QueueCounter()
        self.listing = Listing(ledger, results.hub, self.queues.figures)
        self.answers = answers = Answers()
        self.broker = broker = create_broker(
            settings,
            [query_router(results, answers, around=hooks.consuming(PROGRESS_QUEUE))],
        )
        self.jobs = JobPublisher(ConfirmedChannel(around=hooks.publishing), settings, signing)
        self.scheduler = Scheduler(ledger, hooks.scheduled(self.jobs))
        self.handbacks = HandBackRelay(
            self.jobs.republish,
            signing,
            hooks.dead_letters(HANDBACK_QUEUE, dead_letters_via(broker, HANDBACK_QUEUE)),
            around=hooks.consuming(HANDBACK_QUEUE),
        )
        self.batches = BatchScheduler(ledger, hooks.scheduled(self.jobs))
        self.purger = Purger(ledger, settings.retention) if settings.retention else None
        self.releaser = Releaser(ledger, hooks.scheduled(self.jobs))
        self.announcer = ControlAnnouncer(
            ConfirmedChannel(around=hooks.publishing), signing, settings.publish_timeout_seconds
        )
        self.canceller = Canceller(ledger, self.announcer, results.hub.notify)
        self.cancel_intake = CancelIntake(
            self.canceller,
            hooks.dead_letters(CANCEL_QUEUE, dead_letters_via(broker, CANCEL_QUEUE)),
            around=hooks.consuming(CANCEL_QUEUE),
            submitters=self.submitters,
            answers=answers,
        )
        self.batch_intake = BatchIntake(
            self.batches,
            hooks.dead_letters(BATCH_QUEUE, dead_letters_via(broker, BATCH_QUEUE)),
            around=hooks.consuming(BATCH_QUEUE),
            submitters=self.submitters,
            answers=answers,
        )
        self.intake = Intake(
            self.scheduler,
            hooks.dead_letters(SCHEDULE_QUEUE, dead_letters_via(broker, SCHEDULE_QUEUE)),
            around=hooks.consuming(SCHEDULE_QUEUE),
            submitters=self.submitters,
            answers=answers,
        )
        self.recorder = ReplyRecorder(
            hooks.store_timed(ledger.store_replies),
            results.hub,
            hooks.dead_letters(LEDGER_QUEUE, dead_letters_via(broker, LEDGER_QUEUE)),
            signing,
            prefetch=settings.ledger_prefetch,
            observe=hooks.recorded(),
        )
        self.worker = WorkerPart(settings, signing, broker, hooks) if with_worker else None
        self._grace = settings.grace_seconds or None
        self._draining: asyncio.Future[None] | None = None

    def drain(self) -> "asyncio.Future[None]":
        """Stop the in-process worker, once: its steps finish, the rest is handed back; every
        call returns that one run, to await."""
        # NOTE: on SIGTERM, `serve` runs this before HTTP stops (cli.py), so reads and
        # streams still answer while the worker drains.
        if self._draining is None:
            self._draining = asyncio.ensure_future(self._drain_worker())
        return self._draining

    async def _drain_worker(self) -> None:
        if self.worker is not None:
            await self.worker.drain()

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Start every part; on exit stop them: consumers, broker, recorder, ledger, tracing."""
        # NOTE: each part's stop is pushed before it starts, so a start that fails half-way
        # stops what did start; the stops run in reverse order.
        async with AsyncExitStack() as stack:
            stack.callback(self.hooks.tracing.shutdown)
            await self.ledger.open()
            stack.push_async_callback(self.ledger.close)
            warn_if_open(self.settings)
            if self.purger is not None:
                self.purger.start()
                stack.push_async_callback(self.purger.stop)
            if self.listener is not None:
                self.listener.start()
                stack.push_async_callback(self.listener.stop)
            if self.worker is not None:
                stack.push_async_callback(self.worker.close)
            stack.push_async_callback(self.jobs.close)
            stack.push_async_callback(self.announcer.close)
            # NOTE: a connection of its own, so replies published by an in-process worker
            # while the broker drains it on shutdown are still stored and acked.
            recording = await connect(self.settings)
            stack.push_async_callback(recording.close)
            # NOTE: and one for answers, whose address the sender chose: RabbitMQ closes a
            # connection that publishes to some of them (messaging/answers.py).
            answering = await connect(self.settings)
            stack.push_async_callback(answering.close)
            stack.push_async_callback(self.answers.close)
            await self.answers.start(answering)
            stack.push_async_callback(self.recorder.stop, self._grace)
            stack.push_async_callback(self.broker.stop)
            stack.push_async_callback(self._stop_consuming)
            attach: list[Attach] = [
                self.jobs.start,
                self.announcer.start,
                self.cancel_intake.start,
                self.intake.start,
                self.batch_intake.start,
                self.handbacks.start,
                self.queues.start,
            ]
            if self.worker is not None:
                attach += self.worker.attach
            await start_broker(self.broker, self.settings, attach)
            await self.recorder.start(recording)
            releasing = asyncio.create_task(self.releaser.run())
            stack.callback(releasing.cancel)
            logger.info(
                "gateway ready on %s:%s (worker in process: %s)",
                self.settings.host,
                self.settings.port,
                self.worker is not None,
            )
            yield

    async def _stop_consuming(self) -> None:
        # NOTE: side by side, so shutdown takes one grace period, not one per consumer.
        # Under `serve` the worker has usually drained already, while HTTP still answered.
        await asyncio.gather(
            self.intake.stop(timeout=self._grace),
            self.batch_intake.stop(timeout=self._grace),
            self.cancel_intake.stop(timeout=self._grace),
            self._drain_then_stop_hand_backs(),
        )

    async def _drain_then_stop_hand_backs(self) -> None:
        # NOTE: the in-process worker's hand-backs still go back onto jobcast.jobs (for the
        # other workers) before this gateway stops putting them back.
        await self.drain()
        await self.handbacks.stop(timeout=self._grace)


def create_app(settings: Settings, *, with_worker: bool = False) -> FastAPI:
    """The gateway as an ASGI app; `with_worker` also runs jobs in this process (quickstart)."""
    gateway = Gateway(settings, with_worker=with_worker)
    app = FastAPI(
        title="jobcast",
        summary="Hand long-running jobs to RabbitMQ and follow every step of them live.",
        version="0.1.0",
        lifespan=lambda _: gateway.running(),
        # NOTE: tracing outermost, so every log line and count sits inside the request's span;
        # CORS next, so a preflight is answered before anything reads a body or asks for a key,
        # and every answer (a 413 from the body limit, a 401, a domain error) carries its headers.
        middleware=[
            *gateway.hooks.tracing.http_middleware(),
            *cors_middleware(settings.cors_origins),
            Middleware(
                BodySizeLimit,
                max_bytes=settings.max_body_bytes,
                per_path={BATCH_PATH: settings.max_batch_body_bytes},
            ),
        ],
    )
    # NOTE: with JOBCAST_AUTH=on every route but /health, /ready, the dashboard's page and the
    # API's descriptions needs an API key (jobcast/http/auth.py); `who` tells each router whose
    # jobs it may show (the same dependency, so one ledger read per request).
    who = gateway.auth
    keyed = [Depends(who)]
    app.include_router(
        producer_http.router(gateway.scheduler, gateway.canceller, who, gateway.admission),
        dependencies=keyed,
        responses=AUTH_ERRORS,
    )
    # NOTE: before query_http's /jobs/{offset}, so /jobs/stream is the feed, not an offset
    app.include_router(
        listing_http.router(gateway.listing, who, who.still_allowed, gateway.feed_slots),
        dependencies=keyed,
        responses=AUTH_ERRORS,
    )
    app.include_router(
        batch_router(gateway.batches, who, gateway.admission),
        dependencies=keyed,
        responses=AUTH_ERRORS,
    )
    if gateway.read_gate is not None:
        app.include_router(
            tokens_router(gateway.read_gate, gateway.ledger, who),
            dependencies=keyed,
            responses=AUTH_ERRORS,
        )
    app.include_router(
        query_http.router(gateway.results, who), dependencies=keyed, responses=AUTH_ERRORS
    )
    app.include_router(
        retention_router(gateway.ledger, who), dependencies=keyed, responses=AUTH_ERRORS
    )
    app.include_router(
        query_sse.router(gateway.results, who, who.still_allowed),
        dependencies=keyed,
        responses=AUTH_ERRORS,
    )
    app.include_router(asyncapi.router)
    app.include_router(webclient.router())
    app.include_router(dashboard.router(dashboard.pipeline_names(settings), guard=[Depends(who)]))
    app.include_router(
        probes.router(
            gateway.broker,
            gateway.hooks.metrics,
            worker=gateway.worker.worker if gateway.worker is not None else None,
            recorder=gateway.recorder,
            ledger=gateway.ledger,
            metrics_guard=[Depends(who.admin())],
        )
    )
    install_error_handlers(app)
    # NOTE: the routes get their parts by closure; these are for the process entry point
    # (cli.py drains before HTTP stops) and for tests that reach a part directly.
    app.state.drain = gateway.drain
    app.state.broker = gateway.broker
    app.state.ledger = gateway.ledger
    app.state.auth = gateway.auth
    app.state.read_gate = gateway.read_gate
    app.state.rate_limiter = gateway.rate_limiter
    app.state.feed_slots = gateway.feed_slots
    app.state.metrics = gateway.hooks.metrics
    app.state.scheduler = gateway.scheduler
    app.state.batches = gateway.batches
    app.state.results = gateway.results
    return app


def warn_if_open(settings: Settings) -> None:
    """Say so when anyone who reaches this gateway from another machine reads every job."""
    if settings.auth == "off" and not is_loopback(settings.host):
        logger.warning(
            "JOBCAST_AUTH=off and the gateway listens on %s: anyone who reaches it schedules "
            "jobs and reads every job's results; set JOBCAST_AUTH=on (jobcast keys add) in "
            "production",
            settings.host,
        )


def is_loopback(host: str) -> bool:
    """True for an address only this machine reaches (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything


def reply_listener(ledger: Ledger, results: Results) -> ReplyListener | None:
    """On PostgreSQL other gateways store replies too: this one hears of them (LISTEN) and
    wakes its followers; None on SQLite (one gateway per file)."""
    if not isinstance(ledger, PostgresLedger):
        return None
    return ledger.reply_listener(results.hub.notify, results.hub.ring_all)
