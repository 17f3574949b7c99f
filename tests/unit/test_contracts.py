"""The messages other services rely on."""

import pytest
from pydantic import ValidationError

from contracts import JobRequest, Reply, ReplyKind
from contracts.errors import describe
from contracts.topology import JOBS_QUEUE, LEDGER_QUEUE, SCHEDULE_QUEUE, reply_key

VALID = {"deployment": "Docker", "framework": "FastAPI", "fn": "default_fn"}


def test_a_valid_request_round_trips_as_json():
    request = JobRequest.model_validate(VALID)
    assert JobRequest.model_validate_json(request.model_dump_json()) == request


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"fn": ""}, "fn"),
        ({"fn": "   "}, "fn"),
        ({"deployment": "x" * 201}, "deployment"),
        ({"framework": 3}, "framework"),
        ({"extra": "field"}, "extra"),
    ],
)
def test_bad_requests_are_refused_with_the_field_named(change, where):
    with pytest.raises(ValidationError) as caught:
        JobRequest.model_validate({**VALID, **change})
    assert describe(caught.value).startswith(where)


def test_missing_fields_are_refused():
    with pytest.raises(ValidationError, match="fn"):
        JobRequest.model_validate({"deployment": "Docker", "framework": "FastAPI"})


def test_the_schema_carries_the_examples():
    schema = JobRequest.model_json_schema()
    assert schema["examples"] == [VALID]
    assert schema["additionalProperties"] is False


def test_replies_carry_offset_and_seq_and_know_when_they_end_a_job():
    result = Reply(offset=4, seq=0, kind=ReplyKind.RESULT, value="result1")
    done = Reply(offset=4, seq=3, kind="done", value="done")
    assert (result.is_final, done.is_final) == (False, True)
    assert Reply.model_validate_json(done.model_dump_json()) == done


def test_reply_routing_keys_name_the_offset():
    assert reply_key(42) == "reply.42"


def test_work_queues_are_quorum_queues_with_a_delivery_limit_and_dead_letters():
    for queue in (JOBS_QUEUE, SCHEDULE_QUEUE, LEDGER_QUEUE):
        assert queue.arguments["x-queue-type"] == "quorum"
        assert queue.arguments["x-delivery-limit"] > 0
        assert queue.arguments["x-dead-letter-exchange"] == "jobcast.dlx"
        assert queue.durable
