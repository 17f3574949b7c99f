"""Optional OpenTelemetry tracing (`pip install 'jobcast[otel]'`, JOBCAST_TRACING=console|otlp).

One trace runs from `POST /schedule` (continuing the caller's `traceparent`, if any) through the
job message, every step and every reply into the ledger: the hooks (hooks.py) carry the W3C
context in message headers, and the Job itself carries it too (`Job.trace`) for consumers that
read the body only. With tracing off, `NoTracing` stands in: every hook passes through.
"""

import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, Protocol

from aio_pika.abc import AbstractIncomingMessage
from starlette.middleware import Middleware

from consumer.runner import StepObserver
from contracts import Job
from contracts.topology import (
    DEAD_QUEUE,
    DIRECT_REPLY_TO,
    JOBS_QUEUE,
    LEDGER_QUEUE,
    PROGRESS_QUEUE,
    REPLIES_EXCHANGE,
    REPLY_KEY_ALL,
    SCHEDULE_QUEUE,
)
from producer.scheduler import PublishJob
from query.recorder import Recorded, RecordObserver

try:
    from opentelemetry import propagate, trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SimpleSpanProcessor,
        SpanExporter,
    )
except ImportError:  # the otel extra is not installed
    TracerProvider = None  # type: ignore[assignment,misc]

_REPLY_PREFIX = "reply."
_KNOWN = {q.name for q in (JOBS_QUEUE, SCHEDULE_QUEUE, PROGRESS_QUEUE, LEDGER_QUEUE, DEAD_QUEUE)}


class TracingUnavailableError(RuntimeError):
    """JOBCAST_TRACING is on but the otel extra is not installed."""


class Tracing(Protocol):
    """The hooks that trace one process: each wraps a part's own hook or publish."""

    def carry(self, publish: PublishJob) -> PublishJob:
        """`publish` that writes the current trace context into the Job (`Job.trace`)."""
        ...

    def step_spans(self, inner: StepObserver) -> StepObserver:
        """A step observer that records a span per step attempt, then calls `inner`."""
        ...

    def publish_span(
        self, exchange: str, routing_key: str
    ) -> AbstractContextManager[dict[str, str]]:
        """A producer span around one publish; yields the headers that carry its context."""
        ...

    def consume_span(self, message: AbstractIncomingMessage) -> AbstractContextManager[object]:
        """A consumer span around handling one message, continuing the trace it carries."""
        ...

    def recorded_spans(self, inner: RecordObserver) -> RecordObserver:
        """A record observer that records a span per reply settled, then calls `inner`."""
        ...

    def http_middleware(self) -> list[Middleware]:
        """ASGI middleware that opens a server span per HTTP request."""
        ...

    def shutdown(self) -> None:
        """Flush and stop exporting."""
        ...


class NoTracing:
    """Tracing off: every hook is the part's own, nothing is recorded."""

    def carry(self, publish: PublishJob) -> PublishJob:
        return publish

    def step_spans(self, inner: StepObserver) -> StepObserver:
        return inner

    def publish_span(
        self, exchange: str, routing_key: str
    ) -> AbstractContextManager[dict[str, str]]:
        return nullcontext({})

    def consume_span(self, message: AbstractIncomingMessage) -> AbstractContextManager[object]:
        return nullcontext()

    def recorded_spans(self, inner: RecordObserver) -> RecordObserver:
        return inner

    def http_middleware(self) -> list[Middleware]:
        return []

    def shutdown(self) -> None:
        pass


class TracingSettings(Protocol):
    """What tracing is set up from (jobcast's Settings)."""

    @property
    def tracing(self) -> str:
        """off, console or otlp (JOBCAST_TRACING)."""
        ...


def setup_tracing(settings: TracingSettings, service: str) -> Tracing:
    """Tracing for one process: `NoTracing` when JOBCAST_TRACING is off."""
    if settings.tracing == "off":
        return NoTracing()
    if TracerProvider is None:
        raise TracingUnavailableError(
            "JOBCAST_TRACING needs the otel extra: pip install 'jobcast[otel]'"
        )
    return OtelTracing(service, settings.tracing)


def destination_of(routing_key: str) -> str:
    """A routing key as a span name part: the queue's name, `reply.*` or the reply-to address.

    A span named after reply.<offset> would be a new name for every job, which tracing
    backends index and group by.
    """
    if routing_key.startswith(_REPLY_PREFIX):
        return REPLY_KEY_ALL
    if routing_key.startswith(DIRECT_REPLY_TO):
        return DIRECT_REPLY_TO
    return routing_key if routing_key in _KNOWN else "other"


def _one_line(span: "ReadableSpan") -> str:
    text: str = span.to_json(indent=None)
    return text + "\n"


def _exporter(kind: str) -> "SpanExporter":
    if kind == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # type: ignore[import-not-found]
                OTLPSpanExporter,
            )
        except ImportError as exc:
            raise TracingUnavailableError(
                "JOBCAST_TRACING=otlp needs opentelemetry-exporter-otlp-proto-http"
            ) from exc
        exporter: SpanExporter = OTLPSpanExporter()  # endpoint from OTEL_EXPORTER_OTLP_*
        return exporter
    return ConsoleSpanExporter(out=sys.stderr, formatter=_one_line)


class OtelTracing:
    """A tracer provider of this process and the hooks that carry its context along."""

    def __init__(self, service: str, kind: str) -> None:
        self.provider = TracerProvider(resource=Resource.create({"service.name": service}))
        exporter = _exporter(kind)
        # NOTE: console spans are written at once (tests and `docker logs` read them);
        # a collector gets them in batches.
        processor = (BatchSpanProcessor if kind == "otlp" else SimpleSpanProcessor)(exporter)
        self.provider.add_span_processor(processor)
        self.tracer = self.provider.get_tracer("jobcast")

    def carry(self, publish: PublishJob) -> PublishJob:
        """`publish` that writes the current W3C context into the Job (`Job.trace`)."""

        async def carried(job: Job) -> None:
            propagate.inject(job.trace)
            await publish(job)

        return carried

    def step_spans(self, inner: StepObserver) -> StepObserver:
        """An `observe` hook that records a span for each step attempt, then calls `inner`."""

        def observe(fn: str, seq: int, seconds: float, ok: bool) -> None:
            end = time.time_ns()
            span = self.tracer.start_span(
                f"{fn} step {seq}",
                start_time=end - int(seconds * 1e9),
                attributes={"jobcast.fn": fn, "jobcast.step": seq, "jobcast.ok": ok},
            )
            if not ok:
                span.set_status(trace.StatusCode.ERROR)
            span.end(end_time=end)
            inner(fn, seq, seconds, ok)

        return observe

    @contextmanager
    def publish_span(self, exchange: str, routing_key: str) -> Iterator[dict[str, str]]:
        """A ConfirmedChannel's `around` hook: a producer span per message published, its
        context in the headers the message carries (whoever consumes it continues it)."""
        with self.tracer.start_as_current_span(
            f"{exchange or 'default'}.{destination_of(routing_key)} publish",
            kind=trace.SpanKind.PRODUCER,
            attributes={"messaging.system": "rabbitmq"},
        ):
            headers: dict[str, str] = {}
            propagate.inject(headers)
            yield headers

    @contextmanager
    def consume_span(self, message: AbstractIncomingMessage) -> Iterator[None]:
        """A consumer span for one message handled, continuing the trace in its headers."""
        with self.tracer.start_as_current_span(
            f"{message.exchange or 'default'}.{destination_of(message.routing_key or '')} process",
            context=_context_of(message),
            kind=trace.SpanKind.CONSUMER,
            attributes={"messaging.system": "rabbitmq"},
        ):
            yield

    def recorded_spans(self, inner: RecordObserver) -> RecordObserver:
        """The ReplyRecorder's `observe` hook: a consumer span per reply stored (or not),
        continuing the trace its headers carry, then `inner`."""

        def observe(batch: Sequence[Recorded]) -> None:
            for item in batch:
                span = self.tracer.start_span(
                    f"{REPLIES_EXCHANGE.name}.{REPLY_KEY_ALL} process",
                    context=_context_of(item.message),
                    kind=trace.SpanKind.CONSUMER,
                    attributes={
                        "messaging.system": "rabbitmq",
                        "messaging.destination.name": LEDGER_QUEUE.name,
                        "jobcast.outcome": item.outcome or "invalid",
                    },
                )
                span.end()
            inner(batch)

        return observe

    def http_middleware(self) -> list[Middleware]:
        """A server span per HTTP request (outermost: every log line and count sits inside)."""
        return [Middleware(TraceRequests, tracer=self.tracer)]

    def shutdown(self) -> None:
        """Flush and stop exporting."""
        self.provider.shutdown()


def _context_of(message: AbstractIncomingMessage) -> Any:
    """The trace context a message's headers carry (W3C `traceparent`), if any."""
    return propagate.extract({k: _text(v) for k, v in (message.headers or {}).items()})


def _text(value: object) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


class TraceRequests:
    """ASGI middleware: a server span per HTTP request, continuing the caller's `traceparent`."""

    def __init__(self, app: Any, tracer: "trace.Tracer") -> None:
        self.app = app
        self.tracer = tracer

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        with self.tracer.start_as_current_span(
            f"{scope['method']} {scope['path']}",
            context=propagate.extract(carrier),
            kind=trace.SpanKind.SERVER,
            attributes={"http.request.method": scope["method"], "url.path": scope["path"]},
        ) as span:

            async def send_status(message: Any) -> None:
                if message["type"] == "http.response.start":
                    span.set_attribute("http.response.status_code", message["status"])
                await send(message)

            await self.app(scope, receive, send_status)
