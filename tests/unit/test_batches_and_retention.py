"""The plain rules of batches and retention: what a batch may hold, which of its jobs are
repeats, how durations read, and how purged offsets are remembered."""

from datetime import timedelta

import pytest
from pydantic import ValidationError

from contracts import IdempotencyConflictError, JobRequest
from contracts.batches import MAX_BATCH_JOBS, BatchRequest
from jobcast.settings import Settings
from ledger.batches import fill, repeats
from ledger.retention import interval, parse_duration, runs

JOB = {"deployment": "Docker", "framework": "FastAPI", "fn": "default_fn"}
REQUEST = JobRequest(**JOB)


def test_a_batch_tags_every_job_and_keeps_each_key():
    batch = BatchRequest.model_validate(
        {"jobs": [{**JOB, "idempotency_key": "a"}, {**JOB, "tags": ["eu"]}], "batch": "n1"}
    )
    assert batch.requests() == [
        (JobRequest(**JOB, tags=["batch:n1"]), "a"),
        (JobRequest(**JOB, tags=["eu", "batch:n1"]), None),
    ]


def test_a_batch_without_a_name_leaves_the_requests_as_they_are():
    batch = BatchRequest.model_validate({"jobs": [JOB]})
    assert batch.requests() == [(REQUEST, None)]
    assert batch.requests()[0][0].model_dump_json() == REQUEST.model_dump_json()


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ({"jobs": []}, "at least 1"),
        ({"jobs": [JOB] * (MAX_BATCH_JOBS + 1)}, "at most 1000"),
        ({"jobs": [{**JOB, "idempotency_key": "k"}] * 2}, "repeats that of jobs.0"),
        ({"jobs": [{**JOB, "tags": [f"t{i}" for i in range(8)]}], "batch": "b"}, "no room"),
        ({"jobs": [JOB], "batch": "has space"}, "pattern"),
        ({"jobs": [JOB], "batch": "x" * 59}, "at most 58"),
        ({"jobs": [{**JOB, "idempotency_key": "a\x00"}]}, "control characters"),
        ({"jobs": [JOB], "extra": 1}, "Extra inputs"),
    ],
)
def test_a_batch_that_cannot_be_scheduled_is_refused_whole(body, why):
    with pytest.raises(ValidationError, match=why):
        BatchRequest.model_validate(body)


def test_repeats_are_found_by_key_and_a_key_for_another_request_is_a_conflict():
    other = JobRequest(**{**JOB, "fn": "other"})
    known = {"a": (7, REQUEST)}
    assert repeats([(REQUEST, "a"), (REQUEST, None), (other, "b")], known) == [7, None, None]
    with pytest.raises(IdempotencyConflictError):
        repeats([(REQUEST, None), (other, "a")], known)


def test_new_jobs_take_fresh_offsets_in_the_batch_order():
    assert fill([None, 7, None], [12, 11]) == [(11, True), (7, False), (12, True)]
    with pytest.raises(ValueError, match="more fresh"):
        fill([None], [1, 2])


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("7d", 604800),
        ("12h", 43200),
        ("30m", 1800),
        ("90s", 90),
        ("3600", 3600),
        ("0.5", 0.5),
        ("2W", 1209600),
        (" 1d ", 86400),
    ],
)
def test_a_retention_reads_as_a_duration(text, seconds):
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "0", "-1d", "7 days", "1d2h", "d", "1y"])
def test_a_retention_that_is_no_duration_is_refused(text):
    with pytest.raises(ValueError, match=r"duration|longer than 0"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["36501d", "100000000000", "999999999d", "9" * 30 + "w"])
def test_a_duration_past_a_century_is_refused_at_start(text):
    # Found by review: accepted, then the purger's `now - retention` overflowed and its task
    # died unseen (no more purges), and a read token's expiry made every POST /schedule a 500
    # after the job was scheduled; the longest raised OverflowError, not a ValueError
    with pytest.raises(ValueError, match="at most 36500 days"):
        parse_duration(text)
    assert parse_duration("36500d") == timedelta(days=36500)


def test_a_read_token_ttl_under_a_second_is_refused_at_start():
    # tokens would be minted expired (their expiry is in whole seconds)
    for ttl in ("0.5", "0.0001"):
        with pytest.raises(ValidationError, match="at least 1 second"):
            Settings(read_token_ttl=ttl)
    assert Settings(read_token_ttl="1").read_token_ttl == timedelta(seconds=1)
    with pytest.raises(ValidationError, match="at most 36500 days"):
        Settings(read_token_ttl="999999999d")


def test_purged_offsets_are_remembered_as_runs():
    assert runs([7, 1, 3, 2, 9, 8, 3]) == [(1, 3), (7, 9)]
    assert runs([]) == []


def test_purge_rounds_come_at_most_a_minute_apart():
    assert interval(timedelta(days=7)) == 60
    assert interval(timedelta(seconds=2)) == 0.5


def test_a_prefetch_amqp_cannot_carry_is_refused_at_start():
    # Found by review: AMQP's prefetch count is 16 bits; a larger one passed the settings and
    # the worker (or the gateway's recorder) died at start on "Short unsigned integer range"
    for field in ("worker_concurrency", "ledger_prefetch"):
        with pytest.raises(ValidationError, match="65535"):
            Settings(**{field: 65536})
        assert getattr(Settings(**{field: 65535}), field) == 65535
