"""The one mechanism that counts and traces every message, whichever library carried it.

The parts that take and send messages (aio-pika consumers and confirmed publishers, the
dead-letter copies, FastStream's progress responder) import nothing from here: each takes plain
callables (an `around` per message consumed or published, a dead-letter callable, observers),
and `Hooks` builds them all from one process's Metrics and Tracing for the composition root.
While a message is handled, every log line names the job it is about (offset, fn, delivery).
"""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson

from consumer.runner import StepObserver
from contracts import Reply
from contracts.errors import DeadLetterReason
from contracts.messages import MAX_REQUEST_BYTES
from contracts.topology import JOBS_QUEUE, Queue
from messaging.connection import delivery_count
from messaging.consumer import AroundConsume, DeadLetter, Message
from messaging.publishing import AroundPublish
from observability.logs import job_context
from observability.metrics import Metrics
from observability.tracing import Tracing
from producer.scheduler import PublishJob
from query.recorder import RecordObserver, StoreMany


def fields_of(queue: str, body: bytes, headers: dict[str, Any]) -> dict[str, Any]:
    """What a log line about a message of `queue` should carry: offset, fn, delivery count."""
    fields: dict[str, Any] = {}
    # NOTE: not parsed past a job's size: this runs before the handler's size check, and a
    # poison body of RabbitMQ's 128 MiB as `[[],[],…]` was gigabytes of Python objects.
    if queue == JOBS_QUEUE.name:
        try:
            job = orjson.loads(body) if len(body) <= MAX_REQUEST_BYTES else None
            fields = {"offset": job["offset"], "fn": job["request"]["fn"]} if job else {}
        except (orjson.JSONDecodeError, KeyError, TypeError):
            pass  # poison: the handler says why
        # NOTE: RabbitMQ's x-delivery-count, 0 on the first delivery; read as the job handler
        # reads it, since a publisher may set it to anything (int() of it raised).
        fields["delivery"] = delivery_count(headers)
    return fields


class Hooks:
    """Every hook of one process, counting in `metrics` and tracing with `tracing`."""

    def __init__(self, metrics: Metrics, tracing: Tracing) -> None:
        self.metrics = metrics
        self.tracing = tracing

    def consuming(self, queue: Queue) -> AroundConsume:
        """The `around` of a consumer of `queue`: names the job for every log line written
        meanwhile, counts the message (and a redelivery) and its handling time, and opens a
        consumer span that continues the trace in the message's headers."""
        received = self.metrics.received.labels(queue.name)
        redelivered = self.metrics.redeliveries.labels(queue.name)
        handled = self.metrics.handling_seconds.labels(queue.name, "ok")
        failed = self.metrics.handling_seconds.labels(queue.name, "error")
        span = self.tracing.consume_span

        @contextmanager
        def around(message: Message) -> Iterator[None]:
            received.inc()
            if message.redelivered:
                redelivered.inc()
            token = job_context.set(fields_of(queue.name, message.body, message.headers or {}))
            started = time.perf_counter()
            outcome = failed
            try:
                with span(message):
                    yield
                outcome = handled
            finally:
                outcome.observe(time.perf_counter() - started)
                job_context.reset(token)

        return around

    @property
    def publishing(self) -> AroundPublish:
        """The `around` of a confirmed publisher: a producer span whose context the message
        carries in its headers."""
        return self.tracing.publish_span

    def dead_letters(self, queue: Queue, dead_letter: DeadLetter) -> DeadLetter:
        """`dead_letter` for messages of `queue`, counting each copy RabbitMQ confirmed."""

        async def counted(message: Message, reason: DeadLetterReason, detail: str) -> bool:
            confirmed = await dead_letter(message, reason, detail)
            if confirmed:
                self.metrics.dead_letter(queue.name, reason)
            return confirmed

        return counted

    def scheduled(self, publish: PublishJob) -> PublishJob:
        """`publish` of jobs that carries the trace in the Job and counts confirmed ones."""
        return self.tracing.carry(self.metrics.count_scheduled(publish))

    def steps(self) -> StepObserver:
        """The runner's `observe`: a histogram sample and a span per step attempt."""
        return self.tracing.step_spans(self.metrics.step_observer())

    def recorded(self) -> RecordObserver:
        """The ReplyRecorder's `observe`: outcomes, redeliveries and a span per reply."""
        return self.tracing.recorded_spans(self.metrics.recorded)

    def store_timed(self, store_many: StoreMany) -> StoreMany:
        """`store_many` that records how long each committed batch took."""
        return self.metrics.time_writes(store_many)

    def reply_published(self, reply: Reply) -> None:
        """The ReplyPublisher's `published`: a final reply counts its job as ended."""
        self.metrics.reply_published(reply)
