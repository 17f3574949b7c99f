"""Pipelines: declaring, finding and loading them."""

import pytest

from consumer.builtin import default_fn
from consumer.pipelines import Pipeline, Registry, StepContext, load_registry
from contracts import JobRequest, UnknownPipelineError


def test_steps_run_in_the_order_they_are_declared():
    greet = Pipeline("greet")

    @greet.step
    async def first(ctx: StepContext) -> str:
        return "a"

    @greet.step
    async def second(ctx: StepContext) -> str:
        return "b"

    assert greet.steps == [first, second]


def test_an_unknown_fn_names_the_pipelines_that_exist():
    registry = Registry([Pipeline("a", steps=[_noop]), Pipeline("b", steps=[_noop])])
    with pytest.raises(UnknownPipelineError, match=r"'nope'.*a, b"):
        registry.get("nope")


def test_two_pipelines_with_one_name_are_refused():
    with pytest.raises(ValueError, match="two pipelines"):
        Registry([Pipeline("a", steps=[_noop]), Pipeline("a", steps=[_noop])])


def test_a_pipeline_without_steps_is_refused():
    with pytest.raises(ValueError, match="no steps"):
        Registry([Pipeline("empty")])


def test_modules_are_scanned_for_pipelines():
    registry = load_registry(["tests.unit.example_pipelines"], builtin=[default_fn(0)])
    assert registry.names() == ["default_fn", "shout"]


async def test_the_default_pipeline_gives_the_examples_results():
    pipeline = default_fn(step_seconds=0)
    request = JobRequest(deployment="Docker", framework="FastAPI", fn="default_fn")
    values = [
        await step(StepContext(0, seq, request, None)) for seq, step in enumerate(pipeline.steps)
    ]
    assert values == ["result1", "result2", "result3"]
    assert pipeline.done_value == "done"


async def _noop(ctx: StepContext) -> None:
    return None


def test_a_pipeline_longer_than_a_job_may_reply_is_refused_at_registration():
    from contracts.messages import MAX_STEPS

    async def step(ctx: StepContext) -> int:
        return ctx.seq

    with pytest.raises(ValueError, match=f"more than {MAX_STEPS} steps"):
        Registry([Pipeline("endless", steps=[step] * (MAX_STEPS + 1))])
    assert Registry([Pipeline("longest", steps=[step] * MAX_STEPS)]).names() == ["longest"]


def test_a_reply_beyond_the_most_steps_a_job_may_have_is_refused_by_the_contract():
    from pydantic import ValidationError

    from contracts import Reply
    from contracts.messages import MAX_STEPS

    Reply(offset=1, seq=MAX_STEPS, kind="done", value="done")
    with pytest.raises(ValidationError, match="less than or equal to"):
        Reply(offset=1, seq=MAX_STEPS + 1, kind="result", value="v")
