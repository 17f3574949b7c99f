"""Metric labels stay bounded; log fields come from the message, not the handler."""

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from contracts import Reply, ReplyKind
from jobcast.metrics import BoundedLabel, Metrics, dead_letter_reason
from jobcast.tracking import fields_of


def test_fn_labels_are_bounded():
    label = BoundedLabel(limit=2)
    assert [label(v) for v in ("a", "b", "c", "a", None)] == ["a", "b", "other", "a", "unknown"]


def test_dead_letter_reasons_map_to_a_few_labels():
    assert dead_letter_reason("invalid job: offset: field required") == "invalid_job"
    assert dead_letter_reason("invalid job request: fn: too long") == "invalid_request"
    assert dead_letter_reason("unknown fn 'x'; known pipelines: default_fn") == "unknown_pipeline"
    assert dead_letter_reason("step 1 of 'breaks' failed: PermanentStepError: no") == "step_failed"
    assert dead_letter_reason("reply for offset 9, never handed out") == "unknown_offset"
    assert dead_letter_reason("gave up after 5 deliveries: each time, the worker died") == (
        "crash_loop"
    )
    assert dead_letter_reason("something new 12345") == "other"
    assert dead_letter_reason(None) == "other"


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
    from jobcast import tracing
    from jobcast.settings import Settings

    assert tracing.setup_tracing(Settings(), "test") is None
    monkeypatch.setattr(tracing, "TracerProvider", None)
    with pytest.raises(tracing.TracingUnavailableError, match=r"jobcast\[otel\]"):
        tracing.setup_tracing(Settings(tracing="console"), "test")


def test_the_job_consumer_counts_redeliveries_and_binds_the_job_to_log_lines():
    from types import SimpleNamespace

    from jobcast.logs import job_context
    from jobcast.tracking import consuming

    metrics = Metrics()
    seen: list[dict[str, object]] = []

    message = SimpleNamespace(
        redelivered=True,
        body=orjson.dumps({"offset": 5, "request": {"fn": "default_fn"}}),
        headers={"x-delivery-count": 1},
    )
    with consuming(metrics, "jobcast.jobs")(message):  # type: ignore[arg-type]
        seen.append(dict(job_context.get()))
    assert seen == [{"offset": 5, "fn": "default_fn", "delivery": 1}]
    assert job_context.get() == {}  # unbound once the message is handled
    body = metrics.render()[0].decode()
    assert 'jobcast_redeliveries_total{queue="jobcast.jobs"} 1.0' in body
