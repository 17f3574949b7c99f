"""Metric labels stay bounded; log fields come from the message, not the handler."""

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from contracts import Reply, ReplyKind
from observability.hooks import Hooks, fields_of
from observability.metrics import BoundedLabel, Metrics
from observability.tracing import NoTracing


def test_fn_labels_are_bounded():
    label = BoundedLabel(limit=2)
    assert [label(v) for v in ("a", "b", "c", "a", None)] == ["a", "b", "other", "a", "unknown"]


def test_log_fields_of_a_job():
    job = orjson.dumps({"offset": 4, "request": {"fn": "default_fn"}})
    assert fields_of("jobcast.jobs", job, {"x-delivery-count": 2}) == {
        "offset": 4,
        "fn": "default_fn",
        "delivery": 2,
    }
    assert fields_of("jobcast.jobs", b"not json", {}) == {"delivery": 0}


def test_job_outcomes_and_steps_are_counted_by_fn():
    metrics = Metrics()
    metrics.job_ended("default_fn", Reply(offset=1, seq=3, kind=ReplyKind.DONE, value="done"))
    metrics.job_ended("breaks", Reply(offset=2, seq=1, kind=ReplyKind.ERROR, value="boom"))
    metrics.step_observer()("default_fn", 0, 0.2, True)
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain")
    found = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }
    assert found[("jobcast_jobs_completed_total", (("fn", "default_fn"),))] == 1
    assert found[("jobcast_jobs_failed_total", (("fn", "breaks"),))] == 1
    key = (
        "jobcast_step_duration_seconds_count",
        (("fn", "default_fn"), ("outcome", "ok"), ("step", "0")),
    )
    assert found[key] == 1


def test_tracing_is_off_by_default_and_says_what_is_missing(monkeypatch):
    from jobcast.settings import Settings
    from observability import tracing

    assert isinstance(tracing.setup_tracing(Settings(), "test"), tracing.NoTracing)
    monkeypatch.setattr(tracing, "TracerProvider", None)
    with pytest.raises(tracing.TracingUnavailableError, match=r"jobcast\[otel\]"):
        tracing.setup_tracing(Settings(tracing="console"), "test")


def test_the_job_consumer_counts_redeliveries_and_binds_the_job_to_log_lines():
    from types import SimpleNamespace

    from contracts.topology import JOBS_QUEUE
    from observability.logs import job_context

    metrics = Metrics()
    seen: list[dict[str, object]] = []

    message = SimpleNamespace(
        redelivered=True,
        body=orjson.dumps({"offset": 5, "request": {"fn": "default_fn"}}),
        headers={"x-delivery-count": 1},
    )
    with Hooks(metrics, NoTracing()).consuming(JOBS_QUEUE)(message):  # type: ignore[arg-type]
        seen.append(dict(job_context.get()))
    assert seen == [{"offset": 5, "fn": "default_fn", "delivery": 1}]
    assert job_context.get() == {}  # unbound once the message is handled
    body = metrics.render()[0].decode()
    assert 'jobcast_redeliveries_total{queue="jobcast.jobs"} 1.0' in body


async def test_dead_letter_copies_are_counted_by_their_reason_code_once_confirmed():
    from contracts.errors import DeadLetterReason
    from contracts.topology import JOBS_QUEUE

    metrics = Metrics()
    confirmed = iter([True, False])

    async def copy(message: object, reason: DeadLetterReason, detail: str) -> bool:
        return next(confirmed)

    dead_letter = Hooks(metrics, NoTracing()).dead_letters(JOBS_QUEUE, copy)
    failed = DeadLetterReason.STEP_FAILED
    assert await dead_letter(object(), failed, "step 1 of 'breaks' failed")  # type: ignore[arg-type]
    assert not await dead_letter(object(), failed, "step 1 of 'breaks' failed")  # type: ignore[arg-type]
    body = metrics.render()[0].decode()
    assert 'jobcast_dead_lettered_total{queue="jobcast.jobs",reason="step_failed"} 1.0' in body


async def test_the_progress_responder_faststream_carries_is_counted_by_the_same_hook(tmp_path):
    from faststream.rabbit import TestRabbitBroker

    from contracts import Progress, ProgressQuery
    from contracts.topology import PROGRESS_QUEUE
    from jobcast.bootstrap import create_broker
    from jobcast.settings import Settings
    from ledger import open_ledger
    from query.progress_responder import query_router
    from query.results import Results
    from query.wakeups import ReplyHub

    class Answers:  # what the progress responder answers, and to whom
        def __init__(self) -> None:
            self.sent: list[tuple[str | None, object]] = []

        async def send(self, reply_to: str | None, correlation_id: str | None, body) -> None:
            self.sent.append((reply_to, body))

    metrics = Metrics()
    ledger = open_ledger(f"sqlite:///{tmp_path / 'l.db'}")
    around = Hooks(metrics, NoTracing()).consuming(PROGRESS_QUEUE)
    answers = Answers()
    router = query_router(Results(ledger, ReplyHub()), answers, around=around)  # type: ignore[arg-type]
    broker = create_broker(Settings(), [router])
    await ledger.open()
    try:
        async with TestRabbitBroker(broker) as testing:
            await testing.publish(
                ProgressQuery(offset=7),
                queue=PROGRESS_QUEUE.name,
                reply_to="amq.rabbitmq.reply-to.test",
            )
    finally:
        await ledger.close()
    assert answers.sent == [("amq.rabbitmq.reply-to.test", Progress(offset=7, next_seq=0))]
    body = metrics.render()[0].decode()
    assert 'jobcast_messages_received_total{queue="jobcast.progress"} 1.0' in body
    assert (
        'jobcast_message_handling_seconds_count{outcome="ok",queue="jobcast.progress"} 1.0' in body
    )
