"""What jobcast.dead gets for a message jobcast gives up on: traceable, and bounded in size."""

import datetime
from types import SimpleNamespace
from typing import Any

import aio_pika
import pamqp.encode

from consumer.deliveries import hand_back_headers
from contracts.errors import DeadLetterReason
from contracts.headers import (
    HEADER_DELIVERY_COUNT,
    HEADER_KEY,
    HEADER_ORIGINAL_SIZE,
    HEADER_REASON,
    HEADER_REASON_CODE,
    HEADER_SOURCE,
    HEADER_TRUNCATED,
    HEADER_USER_ID,
)
from contracts.topology import DEAD_LETTER_BODY_LIMIT, JOBS_QUEUE
from messaging.dead_letters import dead_letter_copy


def delivered(body: bytes, **properties: Any) -> Any:
    """A stand-in for an aio-pika IncomingMessage: its properties, nothing more."""
    fields: dict[str, Any] = {
        "headers": {},
        "exchange": "",
        "routing_key": JOBS_QUEUE.name,
        "content_type": None,
        "content_encoding": None,
        "message_id": "m-1",
        "correlation_id": None,
        "reply_to": None,
        "timestamp": None,
        "type": None,
        "app_id": None,
        "user_id": None,
        "expiration": None,
    }
    return SimpleNamespace(body=body, **(fields | properties))


def copy_of(message: Any) -> aio_pika.Message:
    return dead_letter_copy(
        message, reason=DeadLetterReason.INVALID_JOB, detail="invalid job: nope", source=JOBS_QUEUE
    )


def test_a_body_at_the_limit_is_kept_whole_one_byte_more_is_cut():
    whole = copy_of(delivered(b"x" * DEAD_LETTER_BODY_LIMIT))
    assert len(whole.body) == DEAD_LETTER_BODY_LIMIT
    assert HEADER_TRUNCATED not in whole.headers

    cut = copy_of(delivered(b"x" * (DEAD_LETTER_BODY_LIMIT + 1)))
    assert len(cut.body) == DEAD_LETTER_BODY_LIMIT
    assert cut.headers[HEADER_TRUNCATED] is True
    assert cut.headers[HEADER_ORIGINAL_SIZE] == DEAD_LETTER_BODY_LIMIT + 1


def test_the_copy_is_persistent_and_traceable():
    at = datetime.datetime(2026, 1, 2, tzinfo=datetime.UTC)
    copy = copy_of(
        delivered(
            b"{}",
            correlation_id="c",
            reply_to="r",
            timestamp=at,
            app_id="a",
            type="t",
            content_type="application/json",
            headers={"tenant": "acme"},
        )
    )
    assert copy.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert (copy.message_id, copy.correlation_id, copy.reply_to) == ("m-1", "c", "r")
    assert (copy.timestamp, copy.app_id, copy.type) == (at, "a", "t")
    assert copy.content_type == "application/json"
    assert copy.headers["tenant"] == "acme"
    assert copy.headers[HEADER_REASON] == "invalid job: nope"
    assert copy.headers[HEADER_SOURCE] == JOBS_QUEUE.name


def test_the_copy_says_why_as_a_code_and_in_words():
    copy = copy_of(delivered(b"{}"))
    assert copy.headers[HEADER_REASON_CODE] == "invalid_job"
    assert copy.headers[HEADER_REASON] == "invalid job: nope"


def test_what_would_break_the_copy_or_a_requeue_is_left_out():
    copy = copy_of(
        delivered(b"{}", user_id="worker", expiration=5, headers={"x-delivery-count": 3})
    )
    assert copy.user_id is None
    assert copy.headers[HEADER_USER_ID] == "worker"
    assert copy.expiration is None
    # a copy moved back to jobcast.jobs starts with no deliveries of its own
    assert "x-delivery-count" not in copy.headers
    assert copy.headers[HEADER_DELIVERY_COUNT] == 3


def test_a_hostile_delivery_count_reads_as_zero():
    for hostile in ("3", True, -1, 2.5, [1]):
        copy = copy_of(delivered(b"{}", headers={"x-delivery-count": hostile}))
        assert copy.headers[HEADER_DELIVERY_COUNT] == 0


def test_a_long_reason_is_cut():
    copy = dead_letter_copy(
        delivered(b"{}"),
        reason=DeadLetterReason.STEP_FAILED,
        detail="r" * 10_000,
        source=JOBS_QUEUE,
    )
    assert len(copy.headers[HEADER_REASON]) == 1000


def test_the_senders_api_key_is_not_copied():
    secret = "jck_the-senders-secret"
    headers = {HEADER_KEY: secret, "X-Jobcast-Key": secret, "x-trace": "kept"}
    copy = copy_of(delivered(b"{}", headers=headers))
    assert copy.headers["x-trace"] == "kept"
    assert secret not in repr(copy.headers)
    assert secret not in repr(copy.properties)


def test_header_values_pamqp_cannot_write_back_are_made_writable():
    # what pamqp reads but cannot write: a long string not UTF-8 (read as bytes), a double
    # past a 32-bit float (written as one); nested too. Before, the copy raised on publish.
    read = {
        "text": b"\xff\xfe",
        "double": 1e300,
        "nested": {"inner": [b"\xff", 2e300, "ok"]},
        "tenant": "acme",
        "count": 3,
    }
    copy = copy_of(delivered(b"{}", headers=read))
    headers = copy.headers or {}
    pamqp.encode.field_table(dict(headers))  # raises if any value cannot be written
    assert headers["text"] == bytearray(b"\xff\xfe")
    assert headers["double"] == "1e+300"
    assert headers["nested"] == {"inner": [bytearray(b"\xff"), "2e+300", "ok"]}
    assert (headers["tenant"], headers["count"]) == ("acme", 3)
    pamqp.encode.field_table(hand_back_headers(read, 1))
