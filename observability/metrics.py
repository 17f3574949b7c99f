"""Prometheus metrics: one registry per process, exposed at /metrics. No per-offset labels."""

from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from consumer.runner import StepObserver
from consumer.worker import Worker
from contracts import Job, Reply, ReplyKind
from contracts.errors import DeadLetterReason
from contracts.topology import LEDGER_QUEUE
from ledger import StoreOutcome
from observability.logs import job_context
from producer.scheduler import PublishJob
from query.recorder import Recorded, StoreMany

MAX_LABEL_VALUES = 100
"""Distinct `fn` values a process reports by name; the rest are counted as `other`."""

STEP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
WRITE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5)


class BoundedLabel:
    """Label values as given until `limit` distinct ones were seen, then `other`.

    `fn` comes from callers; without a bound, junk names would grow the metric without end.
    """

    def __init__(self, limit: int = MAX_LABEL_VALUES) -> None:
        self._limit = limit
        self._seen: set[str] = set()

    def __call__(self, value: str | None) -> str:
        if value is None:
            return "unknown"
        if value in self._seen:
            return value
        if len(self._seen) >= self._limit:
            return "other"
        self._seen.add(value)
        return value


class Metrics:
    """Every jobcast metric, in a registry of its own (so tests can build many processes)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.fn = BoundedLabel()
        r = self.registry
        self.scheduled = Counter(
            "jobcast_jobs_scheduled", "Jobs accepted and confirmed by RabbitMQ.", ["fn"], registry=r
        )
        self.completed = Counter(
            "jobcast_jobs_completed", "Jobs that ended with done.", ["fn"], registry=r
        )
        self.failed = Counter(
            "jobcast_jobs_failed", "Jobs that ended with an error reply.", ["fn"], registry=r
        )
        self.step_seconds = Histogram(
            "jobcast_step_duration_seconds",
            "Duration of each step attempt.",
            ["fn", "step", "outcome"],
            buckets=STEP_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge(
            "jobcast_jobs_in_flight", "Jobs this process is running now.", registry=r
        )
        self.received = Counter(
            "jobcast_messages_received",
            "Messages taken from a queue (whichever library consumed it).",
            ["queue"],
            registry=r,
        )
        self.handling_seconds = Histogram(
            "jobcast_message_handling_seconds",
            "Time to handle one message taken from a queue, by outcome (error: the handler"
            " failed and the message went back); jobcast.ledger stores replies in batches:"
            " see jobcast_ledger_write_seconds.",
            ["queue", "outcome"],
            buckets=STEP_BUCKETS,
            registry=r,
        )
        self.redeliveries = Counter(
            "jobcast_redeliveries", "Messages RabbitMQ delivered again.", ["queue"], registry=r
        )
        self.dead_lettered = Counter(
            "jobcast_dead_lettered",
            "Messages jobcast moved to jobcast.dead, by reason.",
            ["queue", "reason"],
            registry=r,
        )
        self.replies_recorded = Counter(
            "jobcast_replies_recorded",
            "Replies taken from jobcast.ledger: stored, duplicate (stored before),"
            " unknown_offset or invalid (both dead-lettered).",
            ["outcome"],
            registry=r,
        )
        # NOTE: no label: a per-key label would name every key in /metrics and grow with them.
        self.rate_limited = Counter(
            "jobcast_rate_limited",
            "Submissions refused with 429 (JOBCAST_RATE_LIMIT), every key together.",
            registry=r,
        )
        self.ledger_write_seconds = Histogram(
            "jobcast_ledger_write_seconds",
            "Time to commit one batch of replies to the ledger.",
            buckets=WRITE_BUCKETS,
            registry=r,
        )

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def step_observer(self) -> StepObserver:
        """The runner's `observe` hook: one histogram sample per step attempt."""

        def observe(fn: str, seq: int, seconds: float, ok: bool) -> None:
            # NOTE: step numbers are bounded by the pipeline's length, so a fine label.
            self.step_seconds.labels(self.fn(fn), str(seq), "ok" if ok else "error").observe(
                seconds
            )

        return observe

    def watch_worker(self, worker: Worker) -> None:
        """Report the worker's running jobs as jobs_in_flight."""
        self.in_flight.set_function(lambda: worker.in_flight)

    def count_scheduled(self, publish: PublishJob) -> PublishJob:
        """`publish` that counts each job RabbitMQ confirmed."""

        async def counted(job: Job) -> None:
            await publish(job)
            self.scheduled.labels(self.fn(job.request.fn)).inc()

        return counted

    def time_writes(self, store_many: StoreMany) -> StoreMany:
        """`store_many` that records how long each committed batch took."""

        async def timed(replies: Sequence[Reply]) -> list[StoreOutcome]:
            with self.ledger_write_seconds.time():
                return await store_many(replies)

        return timed

    def recorded(self, batch: Sequence[Recorded]) -> None:
        """The ReplyRecorder's `observe` hook: outcomes and redeliveries of a settled batch."""
        for item in batch:
            self.received.labels(LEDGER_QUEUE.name).inc()
            self.replies_recorded.labels(item.outcome or "invalid").inc()
            if item.message.redelivered:
                self.redelivered(LEDGER_QUEUE.name)

    def reply_published(self, reply: Reply) -> None:
        """The ReplyPublisher's `published` hook: a final reply counts its job as ended."""
        if reply.is_final:
            self.job_ended(job_context.get().get("fn"), reply)

    def job_ended(self, fn: str | None, reply: Reply) -> None:
        """A job's final reply was published (by the worker running it)."""
        counter = self.completed if reply.kind is ReplyKind.DONE else self.failed
        counter.labels(self.fn(fn)).inc()

    def dead_letter(self, queue: str, reason: DeadLetterReason) -> None:
        """jobcast moved a message from `queue` to jobcast.dead."""
        self.dead_lettered.labels(queue, reason.value).inc()

    def redelivered(self, queue: str) -> None:
        """RabbitMQ delivered a message from `queue` again."""
        self.redeliveries.labels(queue).inc()
