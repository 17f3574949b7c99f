"""The pipeline every worker knows, whatever JOBCAST_PIPELINES names: the original example's."""

import asyncio

from consumer.pipelines import Pipeline, StepContext


def default_fn(step_seconds: float) -> Pipeline:
    """`default_fn`: three steps of `step_seconds` each, giving result1, result2, result3.

    `step_seconds` is a demo setting (JOBCAST_STEP_SECONDS), handed in by the composition root
    when it builds the registry: no step of a user's pipeline is given it."""

    async def demo_step(ctx: StepContext) -> str:
        await asyncio.sleep(step_seconds)
        return f"result{ctx.seq + 1}"

    return Pipeline("default_fn", steps=[demo_step, demo_step, demo_step])
