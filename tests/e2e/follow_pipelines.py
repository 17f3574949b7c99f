"""Pipelines the follow/CLI tests load (JOBCAST_PIPELINES=tests.e2e.follow_pipelines)."""

import asyncio

from consumer.pipelines import Pipeline, StepContext
from contracts import PermanentStepError

breaks = Pipeline("breaks")
"""One result, then a permanent failure: the job fails at step 1."""


@breaks.step
async def first(ctx: StepContext) -> str:
    await asyncio.sleep(ctx.step_seconds)
    return "almost"


@breaks.step
async def second(ctx: StepContext) -> str:
    await asyncio.sleep(ctx.step_seconds)
    raise PermanentStepError("the disk is on fire")
