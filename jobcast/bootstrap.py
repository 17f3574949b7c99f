"""The composition root: builds each part from Settings and wires them together."""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from urllib.parse import unquote, urlsplit

from aio_pika.abc import AbstractRobustConnection
from faststream.rabbit import Channel, RabbitBroker, RabbitRouter

from consumer.builtin import default_fn
from consumer.control import ControlListener
from consumer.job_consumer import JobConsumer
from consumer.pipelines import load_registry
from consumer.runner import RetryPolicy
from consumer.worker import Worker
from contracts import BrokerUnavailableError, Job
from contracts.errors import ConfigurationError, PublishInDoubtError
from contracts.headers import HEADER_SIGNATURE
from contracts.signing import DEVELOPMENT_KEY, Signer
from contracts.topology import JOBS_QUEUE
from contracts.urls import host_of, is_loopback, masked_url, node_urls
from jobcast.settings import Settings
from messaging.connection import BROKER_FAILURES, unreachable
from messaging.connection import connect as connect_robust
from messaging.dead_letters import dead_letters_via
from messaging.declare import declare_topology
from messaging.faststream import ClusterBroker
from messaging.publishing import ConfirmedChannel
from observability.hooks import Hooks

logger = logging.getLogger(__name__)


def create_broker(settings: Settings, routers: Sequence[RabbitRouter] = ()) -> RabbitBroker:
    """A RabbitBroker on the first node of JOBCAST_AMQP_URL that answers (moving to another when
    it is lost), with publisher confirms on, quiet per-message logs, and `routers`.

    No middlewares: what it carries is counted and traced by the hooks its handlers are given
    (observability/hooks.py), like everything aio-pika carries. ConfigurationError if the URL
    logs in as guest on a broker on another machine (check_broker_user)."""
    check_broker_user(settings)
    return ClusterBroker(
        settings.amqp_url,
        routers=routers,
        # NOTE: graceful_timeout bounds how long stop() waits for running handlers (SIGTERM).
        graceful_timeout=settings.grace_seconds or None,
        reconnect_interval=1.0,
        default_channel=Channel(publisher_confirms=True, on_return_raises=True),
        log_level=logging.DEBUG,
    )


def check_broker_user(settings: Settings) -> None:
    """ConfigurationError if the processes would log in to a broker on another machine as
    RabbitMQ's well-known guest user, unless JOBCAST_ALLOW_GUEST=true. Checked before any
    connection is made."""
    user = urlsplit(settings.amqp_url).username or "guest"  # as aio-pika defaults it
    on_this_machine = all(is_loopback(host_of(node)) for node in node_urls(settings.amqp_url))
    if unquote(user) == "guest" and not on_this_machine and not settings.allow_guest:
        raise ConfigurationError(
            f"RabbitMQ ({masked_url(settings.amqp_url)}) is not on this machine and "
            "JOBCAST_AMQP_URL logs in as guest: give each process a user of its own "
            "(deploy/rabbitmq/definitions.json, README Security), or set "
            "JOBCAST_ALLOW_GUEST=true"
        )


Attach = Callable[[AbstractRobustConnection], Awaitable[None]]
"""Starts a part that talks to aio-pika directly (reply publisher, recorder) on a connection."""


async def start_broker(
    broker: RabbitBroker, settings: Settings, attach: Sequence[Attach] = ()
) -> None:
    """Connect, declare the topology, start the `attach`ed parts, then start consuming;
    BrokerUnavailableError if unreachable."""
    logger.info("connecting to RabbitMQ at %s", masked_url(settings.amqp_url))
    try:
        connection = await broker.connect()
        await declare_topology(settings.amqp_url, settings.quorum_size)
        for start in attach:
            await start(connection)
        await broker.start()
    except BROKER_FAILURES as exc:
        raise unreachable(settings.amqp_url, exc) from exc


async def connect(settings: Settings) -> AbstractRobustConnection:
    """A robust aio-pika connection of its own; BrokerUnavailableError if unreachable."""
    return await connect_robust(settings.amqp_url)


def signer(settings: Settings) -> Signer:
    """The signer of jobs and replies; ConfigurationError if the development key would be used
    against a broker on another machine (anyone who read the code could forge results)."""
    if settings.signing_key is not None:
        return Signer(settings.signing_key.get_secret_value())
    hosts = [host_of(node) for node in node_urls(settings.amqp_url)]
    if not all(is_loopback(host) for host in hosts):
        raise ConfigurationError(
            f"JOBCAST_SIGNING_KEY is not set and RabbitMQ ({', '.join(hosts)}) is not on this "
            "machine: "
            "set the same secret key on every gateway and worker"
        )
    logger.warning("JOBCAST_SIGNING_KEY is not set: jobs and replies use the development key")
    return Signer(DEVELOPMENT_KEY)


class JobPublisher:
    """Publishes signed jobs persistently with confirms, on a channel of its own; fails fast
    while the broker is away. A `PublishJob`: the Scheduler calls it."""

    def __init__(self, channel: ConfirmedChannel, settings: Settings, signer: Signer) -> None:
        self._channel = channel
        self._timeout = settings.publish_timeout_seconds
        self._signer = signer
        self._connection: AbstractRobustConnection | None = None

    async def start(self, connection: AbstractRobustConnection) -> None:
        """Open the channel on `connection` (the broker's)."""
        self._connection = connection
        await self._channel.start(connection)

    async def close(self) -> None:
        await self._channel.close()

    async def __call__(self, job: Job) -> None:
        body = job.model_dump_json().encode()
        await self.republish(body, {HEADER_SIGNATURE: self._signer.sign(body)})

    async def republish(self, body: bytes, headers: dict[str, object]) -> None:
        """Publish a job's `body` on jobcast.jobs with `headers` (its signature among them, as
        a hand-back carries it); return once RabbitMQ confirmed it."""
        # NOTE: while the connection is being restored a publish would wait for it; the
        # caller of POST /schedule gets a 503 at once instead.
        if self._connection is not None and not self._connection.connected.is_set():
            raise BrokerUnavailableError("RabbitMQ is unreachable; reconnecting")
        try:
            async with asyncio.timeout(self._timeout):
                await self._channel.publish(
                    body, exchange="", routing_key=JOBS_QUEUE.name, headers=headers
                )
        except TimeoutError:
            raise PublishInDoubtError(
                f"RabbitMQ did not confirm the job within {self._timeout}s"
            ) from None


class WorkerPart:
    """A worker and its consumer of jobcast.jobs, as one part to start, drain and close; its
    jobs, steps and replies counted and traced by `hooks`."""

    def __init__(
        self, settings: Settings, signing: Signer, broker: RabbitBroker, hooks: Hooks
    ) -> None:
        self.worker = build_worker(settings, signing, hooks)
        self.control = ControlListener(self.worker.cancels, signing)
        hooks.metrics.watch_worker(self.worker)
        self.jobs = JobConsumer(
            self.worker,
            broker,
            hooks.dead_letters(JOBS_QUEUE, dead_letters_via(broker, JOBS_QUEUE)),
            around=hooks.consuming(JOBS_QUEUE),
        )
        self._grace = settings.grace_seconds or None

    @property
    def attach(self) -> list[Attach]:
        """What start_broker starts on the broker's connection: replies first, then control
        messages (so every job taken is checked against them), then jobs."""
        return [self.worker.replies.start, self.control.start, self.jobs.start]

    async def drain(self) -> None:
        """Take no new jobs; running ones finish their step (for the grace period at most),
        then go back to the queue."""
        self.worker.stopping.set()
        await self.jobs.stop(timeout=self._grace)

    async def close(self) -> None:
        await self.control.close()
        await self.worker.replies.close()


def build_worker(settings: Settings, signing: Signer, hooks: Hooks) -> Worker:
    """A Worker with the built-in pipelines plus those of JOBCAST_PIPELINES, its steps and
    replies counted and traced by `hooks`."""
    return Worker(
        registry=load_registry(
            settings.pipelines, builtin=[default_fn(step_seconds=settings.step_seconds)]
        ),
        signer=signing,
        retry=RetryPolicy(
            attempts=settings.step_attempts,
            initial_seconds=settings.retry_initial_seconds,
            max_seconds=settings.retry_max_seconds,
        ),
        concurrency=settings.worker_concurrency,
        publish_timeout=settings.publish_timeout_seconds,
        resume_timeout=settings.resume_timeout_seconds,
        max_deliveries=settings.max_deliveries,
        max_result_bytes=settings.max_result_bytes,
        observe=hooks.steps(),
        around_publish=hooks.publishing,
        published=hooks.reply_published,
    )
