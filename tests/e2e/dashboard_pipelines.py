"""Pipelines the dashboard's browser tests run (JOBCAST_PIPELINES=tests.e2e.dashboard_pipelines)."""

import asyncio
import os
from pathlib import Path

from consumer.pipelines import Pipeline, StepContext
from contracts import PermanentStepError

HOSTILE_VALUE = "<script>alert(1)</script>"
HOSTILE_MARKUP = '<img src=x onerror="alert(2)">'
LONG_VALUE = {"rows": [{"id": n, "name": f"row {n}", "ok": n % 3 != 0} for n in range(40)]}


def step_seconds() -> float:
    """The worker's JOBCAST_STEP_SECONDS (jobcast_env sets it)."""
    return float(os.environ.get("JOBCAST_STEP_SECONDS", "1.0"))


steady = Pipeline("steady")
"""Three steps, the second returning a long JSON value (folded on the page); ends done."""


@steady.step
async def fetch(ctx: StepContext) -> dict[str, object]:
    await asyncio.sleep(step_seconds())
    return {"fetched": ctx.request.deployment, "bytes": 2048}


@steady.step
async def parse(ctx: StepContext) -> dict[str, object]:
    await asyncio.sleep(step_seconds())
    return LONG_VALUE


@steady.step
async def report(ctx: StepContext) -> str:
    await asyncio.sleep(step_seconds())
    return "report ready"


fails = Pipeline("fails")
"""One result, then a permanent failure with a reason."""


@fails.step
async def begin(ctx: StepContext) -> str:
    await asyncio.sleep(step_seconds())
    return "begun"


@fails.step
async def explode(ctx: StepContext) -> str:
    await asyncio.sleep(step_seconds())
    raise PermanentStepError("the disk is on fire")


hostile = Pipeline("hostile")
"""Steps returning markup, then failing with markup as its reason: all must show as text."""


@hostile.step
async def script(ctx: StepContext) -> str:
    await asyncio.sleep(step_seconds())
    return HOSTILE_VALUE


@hostile.step
async def markup(ctx: StepContext) -> dict[str, str]:
    await asyncio.sleep(step_seconds())
    return {"html": HOSTILE_MARKUP}


@hostile.step
async def reason(ctx: StepContext) -> str:
    await asyncio.sleep(step_seconds())
    raise PermanentStepError(HOSTILE_MARKUP)


reports = Pipeline("reports")
"""One step that reports its progress, then waits until a file exists (the test says when)."""


@reports.step
async def count(ctx: StepContext) -> str:
    await ctx.progress(40, 100, "resizing")
    release = Path(str(ctx.request.deployment))
    # NOTE: the test, another process, creates the file once it has seen the progress.
    while not release.exists():  # noqa: ASYNC110, ASYNC240 (a file is the cross-process signal)
        await asyncio.sleep(0.05)
    return "counted"
