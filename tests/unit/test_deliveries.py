"""Counting a job's crashes: clean hand-backs are not crashes, and no header from the wire can
crash the worker, lower the count or grow it without bound."""

import orjson
import pytest

from consumer.deliveries import crashes, hand_back_headers, handed_back
from contracts.headers import HEADER_CRASHES
from messaging.connection import delivery_count
from observability.hooks import fields_of

CAP = 8


def test_a_first_delivery_has_no_crashes():
    assert crashes(None, CAP) == 0
    assert crashes({}, CAP) == 0
    assert not handed_back({})


def test_rabbitmqs_delivery_count_counts_crashes_of_this_message():
    assert crashes({"x-delivery-count": 3}, CAP) == 3


def test_crashes_carried_over_from_hand_backs_add_up_with_this_messages_own():
    assert crashes({HEADER_CRASHES: 2, "x-delivery-count": 3}, CAP) == 5


def test_rolling_restarts_hand_back_without_adding_a_crash():
    headers: dict[str, object] = {"x-jobcast-signature": "abc"}
    for _ in range(3 * CAP):  # many clean hand-backs: the count stays where it was
        headers = hand_back_headers(headers, crashes(headers, CAP))
    assert crashes(headers, CAP) == 0
    # one real crash after all that is one crash
    assert crashes({**headers, "x-delivery-count": 1}, CAP) == 1


def test_a_hand_back_after_crashes_keeps_them():
    crashed_twice = {"x-delivery-count": 2, "x-jobcast-signature": "sig"}
    again = hand_back_headers(crashed_twice, crashes(crashed_twice, CAP))
    assert crashes(again, CAP) == 2
    assert crashes({**again, "x-delivery-count": 1}, CAP) == 3


def test_hand_back_keeps_the_signature_and_trace_and_drops_the_brokers_history():
    original = {
        "x-jobcast-signature": "sig",
        "traceparent": "00-abc-def-01",
        "x-delivery-count": 4,
        "x-death": [{"count": 1}],
        "x-first-death-queue": "jobcast.jobs",
        HEADER_CRASHES: 1,
    }
    assert hand_back_headers(original, 5) == {
        "x-jobcast-signature": "sig",
        "traceparent": "00-abc-def-01",
        HEADER_CRASHES: 5,
    }
    assert handed_back(hand_back_headers(original, 5))


@pytest.mark.parametrize(
    "hostile",
    [
        -1,
        -(2**63),
        True,
        "7",
        b"7",
        7.0,
        None,
        [1, 2],
        {"a": 1},
        "\ud800",
    ],
)
def test_a_value_jobcast_could_not_have_written_counts_as_nothing(hostile):
    assert crashes({HEADER_CRASHES: hostile}, CAP) == 0
    assert crashes({"x-delivery-count": hostile}, CAP) == 0
    assert delivery_count({"x-delivery-count": hostile}) == 0


def test_a_negative_header_cannot_cancel_real_crashes():
    # a publisher that sets x-jobcast-crashes to -1000 on a job does not get past the cap
    assert crashes({HEADER_CRASHES: -1000, "x-delivery-count": CAP}, CAP) == CAP
    assert crashes({HEADER_CRASHES: CAP, "x-delivery-count": -1000}, CAP) == CAP


def test_a_huge_count_stops_at_the_cap():
    assert crashes({HEADER_CRASHES: 2**63 - 1, "x-delivery-count": 2**63 - 1}, CAP) == CAP
    # and what is written back stays small enough for an AMQP header
    assert hand_back_headers({}, crashes({HEADER_CRASHES: 2**63 - 1}, CAP))[HEADER_CRASHES] == CAP


@pytest.mark.parametrize("hostile", ["abc", b"\xff", [1], {"x": 1}, -3])
def test_log_fields_survive_a_hostile_delivery_count(hostile):
    job = orjson.dumps({"offset": 4, "request": {"fn": "default_fn"}})
    assert fields_of("jobcast.jobs", job, {"x-delivery-count": hostile})["delivery"] == 0


def test_a_huge_hostile_count_is_logged_cut_short(caplog):
    # Found by review: the warning repeated the whole value, a header of any size the sender
    # chose, once per delivery
    with caplog.at_level("WARNING"):
        assert crashes({HEADER_CRASHES: "x" * 1_000_000}, CAP) == 0
    [record] = caplog.records
    assert len(record.getMessage()) < 200
    assert "x-jobcast-crashes" in record.getMessage()


def test_log_fields_read_no_body_past_a_jobs_size(monkeypatch):
    # Found by review: the log fields parsed every body on jobcast.jobs before the handler's
    # size check; 128 MiB of `[[],[],...]` (RabbitMQ's largest message) is gigabytes in Python
    parsed: list[int] = []
    loads = orjson.loads
    monkeypatch.setattr(orjson, "loads", lambda body: parsed.append(len(body)) or loads(body))
    job = orjson.dumps({"offset": 4, "request": {"fn": "default_fn"}})
    assert fields_of("jobcast.jobs", job, {})["offset"] == 4
    big = b"[" + b"[]," * 30_000 + b"[]]"
    assert fields_of("jobcast.jobs", big, {}) == {"delivery": 0}
    assert parsed == [len(job)]
