"""JobRequest.tags: bounded, optional, and invisible when absent (the message stays the same)."""

import pytest
from pydantic import ValidationError

from contracts import Job, JobRequest

OLD = '{"deployment":"Docker","framework":"FastAPI","fn":"default_fn"}'


def test_a_request_without_tags_is_the_same_json_as_before_tags_existed():
    request = JobRequest.model_validate_json(OLD)
    assert request.tags == []
    assert request.model_dump_json() == OLD
    assert '"tags"' not in Job(offset=1, request=request).model_dump_json()
    assert request == JobRequest(deployment="Docker", framework="FastAPI", fn="default_fn")


def test_tags_are_kept_in_order_and_the_request_stays_hashable():
    request = JobRequest.model_validate_json(OLD[:-1] + ',"tags":["eu","team:a/b-c_d.e"]}')
    assert request.tags == ["eu", "team:a/b-c_d.e"]
    assert JobRequest.model_validate_json(request.model_dump_json()) == request
    assert len({request, JobRequest.model_validate_json(request.model_dump_json())}) == 1


@pytest.mark.parametrize(
    "tags", [["a"] * 9, [""], ["x" * 65], ["a b"], ["a\n"], ["<b>"], ["é"], "eu", [None]]
)
def test_tags_outside_the_contract_are_refused(tags):
    with pytest.raises(ValidationError, match="tags"):
        JobRequest(deployment="Docker", framework="FastAPI", fn="default_fn", tags=tags)
