"""Pipelines the cancel and delayed-start tests load.

JOBCAST_PIPELINES=tests.e2e.steering_pipelines.

Every step notes `offset seq time` in the file STEERING_RUNS names when it starts, so a test
can tell which steps ran, how often, and when.
"""

import asyncio
import os
import time

from consumer.pipelines import Pipeline, StepContext

LONG_STEP_SECONDS = 30.0
"""Longer than any test waits: a step this long that ended, ended early."""


def noted(ctx: StepContext) -> None:
    with open(os.environ["STEERING_RUNS"], "a") as runs:
        runs.write(f"{ctx.offset} {ctx.seq} {time.time()}\n")


patient = Pipeline("patient")
"""A quick first step, then steps that wait LONG_STEP_SECONDS unless the job is cancelled."""


@patient.step
async def quick(ctx: StepContext) -> str:
    noted(ctx)
    return "step 0 ran"


async def until_cancelled(ctx: StepContext) -> str:
    noted(ctx)
    try:
        await asyncio.wait_for(ctx.cancelled.wait(), LONG_STEP_SECONDS)
    except TimeoutError:
        return f"step {ctx.seq} ran"
    return f"step {ctx.seq} stopped early"


patient.step(until_cancelled)
patient.step(until_cancelled)


stubborn = Pipeline("stubborn")
"""Three steps of STEERING_STEP_SECONDS that never look at ctx.cancelled."""


async def ignores_cancel(ctx: StepContext) -> str:
    noted(ctx)
    await asyncio.sleep(float(os.environ.get("STEERING_STEP_SECONDS", "1.0")))
    return f"step {ctx.seq} ran"


for _ in range(3):
    stubborn.step(ignores_cancel)
