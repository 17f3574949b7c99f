"""Per-message context for logs and metrics: one FastStream middleware on every broker.

Handlers stay plain: this middleware names the job a message is about (offset, fn, delivery
count) for every log line written while it is handled, and counts redeliveries, jobs ending
and dead-lettered messages as they pass.
"""

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, nullcontext
from functools import partial
from typing import Any

import orjson
from aio_pika.abc import AbstractIncomingMessage
from faststream import BaseMiddleware
from faststream._internal.context.repository import ContextRepo
from faststream.message import StreamMessage
from faststream.prometheus import ConsumeAttrs, PrometheusMiddleware
from faststream.rabbit.prometheus.provider import RabbitMetricsSettingsProvider
from faststream.rabbit.response import RabbitPublishCommand

from contracts.headers import HEADER_REASON
from contracts.topology import (
    DEAD_LETTER_EXCHANGE,
    DEAD_QUEUE,
    DIRECT_REPLY_TO,
    JOBS_QUEUE,
    LEDGER_QUEUE,
    PROGRESS_QUEUE,
    REPLY_KEY_ALL,
    SCHEDULE_QUEUE,
)
from jobcast.logs import job_context
from jobcast.metrics import Metrics
from messaging.connection import delivery_count
from messaging.consumer import AroundConsume

_QUEUES = {q.name for q in (JOBS_QUEUE, SCHEDULE_QUEUE, PROGRESS_QUEUE)}
_KNOWN = _QUEUES | {LEDGER_QUEUE.name, DEAD_QUEUE.name}
_REPLY_PREFIX = "reply."


def queue_of(routing_key: str) -> str:
    """The jobcast queue a message with this routing key was consumed from (bounded)."""
    if routing_key in _QUEUES:
        return routing_key
    if routing_key.startswith(_REPLY_PREFIX):
        return LEDGER_QUEUE.name
    return "other"


def fields_of(routing_key: str, body: bytes, headers: dict[str, Any]) -> dict[str, Any]:
    """What a log line about this message should carry: offset, fn, delivery count."""
    fields: dict[str, Any] = {}
    if routing_key == JOBS_QUEUE.name:
        try:
            job = orjson.loads(body)
            fields = {"offset": job["offset"], "fn": job["request"]["fn"]}
        except (orjson.JSONDecodeError, KeyError, TypeError):
            pass  # poison: the handler says why
        # NOTE: RabbitMQ's x-delivery-count, 0 on the first delivery; read as the job handler
        # reads it, since a publisher may set it to anything (int() of it raised).
        fields["delivery"] = delivery_count(headers)
    elif routing_key.startswith(_REPLY_PREFIX):
        offset = routing_key.removeprefix(_REPLY_PREFIX)
        if offset.isdigit():
            fields["offset"] = int(offset)
    return fields


class JobTracking(BaseMiddleware):
    """Binds log fields while a message is handled; counts what passes through."""

    def __init__(self, msg: Any, /, *, context: ContextRepo, metrics: Metrics) -> None:
        super().__init__(msg, context=context)
        self.metrics = metrics

    async def consume_scope(
        self, call_next: Callable[[StreamMessage[Any]], Awaitable[Any]], msg: StreamMessage[Any]
    ) -> Any:
        raw = msg.raw_message
        key = getattr(raw, "routing_key", None) or ""
        if getattr(raw, "redelivered", False):
            self.metrics.redelivered(queue_of(key))
        token = job_context.set(fields_of(key, msg.body, msg.headers))
        try:
            return await call_next(msg)
        finally:
            job_context.reset(token)

    async def publish_scope(self, call_next: Callable[[Any], Awaitable[Any]], cmd: Any) -> Any:
        result = await call_next(cmd)
        if isinstance(cmd, RabbitPublishCommand):
            self._count(cmd)
        return result

    def _count(self, cmd: RabbitPublishCommand) -> None:
        # NOTE: replies are counted by the ReplyPublisher (Metrics.reply_published).
        if cmd.exchange.name == DEAD_LETTER_EXCHANGE.name:
            self.metrics.dead_letter(cmd.destination, (cmd.headers or {}).get(HEADER_REASON))


def destination_of(routing_key: str) -> str:
    """A routing key as a metrics label: the queue's name, `reply.*` or the reply-to address."""
    if routing_key.startswith(_REPLY_PREFIX):
        return REPLY_KEY_ALL
    if routing_key.startswith(DIRECT_REPLY_TO):
        return DIRECT_REPLY_TO
    return routing_key if routing_key in _KNOWN else "other"


class BoundedDestinations(RabbitMetricsSettingsProvider):
    """FastStream's RabbitMQ metrics, labelled by queue instead of by routing key."""

    # NOTE: FastStream labels a message with exchange.routing_key; with reply.<offset> keys and
    # reply-to addresses that is new time series for every job (measured: ~38 /metrics lines
    # per job in the gateway), so memory and /metrics grew without bound.
    def get_consume_attrs_from_message(self, msg: StreamMessage[Any]) -> ConsumeAttrs:
        attrs = super().get_consume_attrs_from_message(msg)
        attrs["destination_name"] = queue_of(msg.raw_message.routing_key or "")
        return attrs

    def get_publish_destination_name_from_cmd(self, cmd: RabbitPublishCommand) -> str:
        return f"{cmd.exchange.name or 'default'}.{destination_of(cmd.destination)}"


def broker_middlewares(metrics: Metrics) -> list[Any]:
    """Every middleware a jobcast broker runs: job context and counts, FastStream's own
    message metrics (in the same registry)."""
    return [
        partial(JobTracking, metrics=metrics),
        PrometheusMiddleware(
            settings_provider_factory=lambda _: BoundedDestinations(),
            registry=metrics.registry,
            app_name="jobcast",
        ),
    ]


def consuming(metrics: Metrics, queue: str, span: AroundConsume | None = None) -> AroundConsume:
    """The `around` hook of an aio-pika consumer of `queue`: names the job for every log line
    written meanwhile, counts redeliveries, and with tracing on, opens a consumer span that
    continues the trace in the message's headers."""

    @contextmanager
    def around(message: AbstractIncomingMessage) -> Iterator[None]:
        if message.redelivered:
            metrics.redelivered(queue)
        token = job_context.set(fields_of(queue, message.body, message.headers or {}))
        try:
            with span(message) if span is not None else nullcontext():
                yield
        finally:
            job_context.reset(token)

    return around
