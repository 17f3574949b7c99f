"""Pipelines the progress tests load (JOBCAST_PIPELINES=tests.e2e.progress_pipelines)."""

import asyncio

from consumer.pipelines import Pipeline, StepContext

TICKS = 100

hundred = Pipeline("hundred")
"""One step that reports 100 progress ticks over about a second, then a step that reports none."""


@hundred.step
async def resize(ctx: StepContext) -> str:
    for n in range(1, TICKS + 1):
        await ctx.progress(n, TICKS, f"file {n} of {TICKS}")
        await asyncio.sleep(0.01)
    return "resized"


@hundred.step
async def publish(ctx: StepContext) -> str:
    await asyncio.sleep(0.05)
    return "published"


quiet = Pipeline("quiet")
"""Three steps that report no progress: the cost of jobs that do not report."""


@quiet.step
async def one(ctx: StepContext) -> int:
    return 1


@quiet.step
async def two(ctx: StepContext) -> int:
    return 2


@quiet.step
async def three(ctx: StepContext) -> int:
    return 3
