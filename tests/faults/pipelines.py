"""Pipelines the fault suite's workers load (JOBCAST_PIPELINES=tests.faults.pipelines).

Every step attempt appends one line to the file named by FAULTS_EXEC_LOG, so the checker can
count executions: `<offset> <seq> <attempt> <pid> <event> <monotonic>` with event `start`,
`finish` or `raise`. Short appends with O_APPEND are atomic, also across processes.
"""

import asyncio
import os
import time

from consumer.pipelines import Pipeline, StepContext
from contracts import PermanentStepError


def _record(ctx: StepContext, event: str) -> None:
    path = os.environ.get("FAULTS_EXEC_LOG")
    if not path:
        return
    line = f"{ctx.offset} {ctx.seq} {ctx.attempt} {os.getpid()} {event} {time.time():.3f}\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def step_seconds() -> float:
    """How long a step sleeps: the worker's JOBCAST_STEP_SECONDS (the fault env sets it), the
    setting the built-in pipeline's steps take."""
    return float(os.environ.get("JOBCAST_STEP_SECONDS", "1.0"))


def chained(previous: object, seq: int) -> str:
    """Step `seq`'s result given the previous one: "/0", "/0/1", "/0/1/2"."""
    return f"{previous or ''}/{seq}"


async def _counted_step(ctx: StepContext) -> str:
    _record(ctx, "start")
    await asyncio.sleep(step_seconds())
    expected = "".join(f"/{seq}" for seq in range(ctx.seq))
    if (ctx.previous or "") != expected:
        # a resumed job must receive the result of the step before, not start from scratch
        raise PermanentStepError(f"step {ctx.seq} got previous={ctx.previous!r}")
    _record(ctx, "finish")
    return chained(ctx.previous, ctx.seq)


counted = Pipeline("counted")
counted.steps.extend([_counted_step, _counted_step, _counted_step])
COUNTED_VALUES = ["/0", "/0/1", "/0/1/2", "done"]


always_fails = Pipeline("always_fails")


@always_fails.step
async def _explode(ctx: StepContext) -> str:
    _record(ctx, "raise")
    raise RuntimeError(f"disk on fire (attempt {ctx.attempt})")


flaky = Pipeline("flaky")


@flaky.step
async def _fails_twice(ctx: StepContext) -> str:
    if ctx.attempt <= 2:
        _record(ctx, "raise")
        raise ConnectionError(f"upstream hiccup (attempt {ctx.attempt})")
    _record(ctx, "finish")
    return f"worked on attempt {ctx.attempt}"


crashes = Pipeline("crashes")
"""Its second step takes the whole worker down, every time (a segfault, the OOM killer)."""


@crashes.step
async def _fine(ctx: StepContext) -> str:
    _record(ctx, "finish")
    return "fine"


@crashes.step
async def _dies(ctx: StepContext) -> str:
    _record(ctx, "start")
    await asyncio.sleep(step_seconds())  # mid-step, as a real crash would be
    os._exit(17)


LONG_STEPS = 40
long_counted = Pipeline("long_counted")
"""Many short steps: a long job that rolling restarts hit again and again."""
long_counted.steps.extend([_counted_step] * LONG_STEPS)
LONG_VALUES = ["".join(f"/{seq}" for seq in range(last + 1)) for last in range(LONG_STEPS)] + [
    "done"
]
