"""Pipelines the follow/CLI tests load (JOBCAST_PIPELINES=tests.e2e.follow_pipelines)."""

import asyncio
import os

from consumer.pipelines import Pipeline, StepContext
from contracts import PermanentStepError


def step_seconds() -> float:
    """How long a step sleeps: the worker's JOBCAST_STEP_SECONDS (jobcast_env sets it), the
    setting the built-in pipeline's steps take."""
    return float(os.environ.get("JOBCAST_STEP_SECONDS", "1.0"))


breaks = Pipeline("breaks")
"""One result, then a permanent failure: the job fails at step 1."""


@breaks.step
async def first(ctx: StepContext) -> str:
    await asyncio.sleep(step_seconds())
    return "almost"


@breaks.step
async def second(ctx: StepContext) -> str:
    await asyncio.sleep(step_seconds())
    raise PermanentStepError("the disk is on fire")
