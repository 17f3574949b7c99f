"""The pipelines of the dashboard's screenshot (harness/screenshot.py): a few that finish, one
that fails with a reason, one slow enough to be running when the picture is taken."""

import asyncio

from pydantic import JsonValue

from consumer.pipelines import Pipeline, StepContext
from contracts import PermanentStepError

thumbnail = Pipeline("thumbnail")


@thumbnail.step
async def fetch(ctx: StepContext) -> JsonValue:
    await asyncio.sleep(0.4)
    return {"source": f"s3://images/{ctx.request.deployment}/{ctx.offset}.png", "bytes": 48213}


@thumbnail.step
async def resize(ctx: StepContext) -> JsonValue:
    await asyncio.sleep(0.4)
    return {"width": 256, "height": 256, "format": "webp"}


@thumbnail.step
async def publish(ctx: StepContext) -> str:
    await asyncio.sleep(0.4)
    return f"https://cdn.example/thumbs/{ctx.offset}.webp"


report = Pipeline("report")


@report.step
async def query(ctx: StepContext) -> JsonValue:
    await asyncio.sleep(0.4)
    return {"rows": 1_204_331}


@report.step
async def render(ctx: StepContext) -> str:
    await asyncio.sleep(0.4)
    raise PermanentStepError("template 'quarterly.html' not found")


async def chunk(ctx: StepContext) -> JsonValue:
    await asyncio.sleep(4)
    return {"chunk": ctx.seq + 1, "records": 5000}


ingest = Pipeline("ingest", steps=[chunk] * 6)
