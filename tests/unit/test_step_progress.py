"""Progress inside a step: `ctx.progress` publishes rate-limited `progress` replies, the latest
always, never after the step's own result, and nothing at all for a step that reports none."""

import asyncio
import math

import pytest

from consumer.pipelines import Pipeline, StepContext
from consumer.runner import RetryPolicy, run_job
from contracts import Job, JobRequest, Reply, ReplyKind

FAST = RetryPolicy(attempts=1, initial_seconds=0, max_seconds=0)


def job(offset: int = 7) -> Job:
    return Job(offset=offset, request=JobRequest(deployment="Docker", framework="FastAPI", fn="p"))


class Published(list[Reply]):
    async def __call__(self, reply: Reply) -> None:
        self.append(reply)

    def kinds(self) -> list[tuple[int, str]]:
        return [(r.seq, r.kind.value) for r in self]

    def ticks(self) -> list[object]:
        return [r.value["current"] for r in self if r.kind is ReplyKind.PROGRESS]  # type: ignore[call-overload,index]


async def test_a_step_that_reports_nothing_publishes_no_more_than_before():
    async def quiet(ctx: StepContext) -> int:
        return ctx.seq

    published = Published()
    await run_job(job(), Pipeline("p", steps=[quiet] * 3), published, retry=FAST)
    # one message per step and the done: no progress, no extra message on the topic
    assert published.kinds() == [(0, "result"), (1, "result"), (2, "result"), (3, "done")]


async def test_ticks_go_out_rate_limited_in_order_the_last_one_before_the_result():
    async def hundred(ctx: StepContext) -> str:
        for n in range(1, 101):
            await ctx.progress(n, 100, f"file {n}")
            await asyncio.sleep(0.002)
        return "resized"

    published = Published()
    await run_job(
        job(), Pipeline("p", steps=[hundred]), published, retry=FAST, progress_seconds=0.05
    )
    ticks = published.ticks()
    assert ticks[0] == 1  # the first goes out at once
    assert ticks[-1] == 100  # the latest always goes out
    assert ticks == sorted(ticks)
    assert len(ticks) < 30  # ~0.3 s of ticks at most one per 0.05 s, not all 100
    assert published.kinds()[-2:] == [(0, "result"), (1, "done")]
    progress = [r for r in published if r.kind is ReplyKind.PROGRESS]
    assert {(r.offset, r.seq) for r in progress} == {(7, 0)}
    assert progress[-1].value == {"current": 100, "total": 100, "message": "file 100"}
    assert not any(r.is_final for r in progress)


async def test_a_held_tick_goes_out_when_its_window_ends_while_the_step_still_runs():
    published = Published()
    while_running: list[object] = []

    async def slow(ctx: StepContext) -> str:
        await ctx.progress(1)
        await ctx.progress(2)  # inside the window: held
        await asyncio.sleep(0.3)
        while_running.extend(published.ticks())
        return "ok"

    await run_job(job(), Pipeline("p", steps=[slow]), published, retry=FAST, progress_seconds=0.1)
    assert while_running == [1, 2]
    assert published.kinds() == [(0, "progress"), (0, "progress"), (0, "result"), (1, "done")]


async def test_no_tick_of_a_step_is_published_after_its_result():
    leftover: list[StepContext] = []

    async def first(ctx: StepContext) -> str:
        await ctx.progress(1)
        leftover.append(ctx)
        return "one"

    async def second(ctx: StepContext) -> str:
        await leftover[0].progress(99)  # step 0 reporting late, from step 1's time
        await ctx.progress(5)
        return "two"

    published = Published()
    await run_job(job(), Pipeline("p", steps=[first, second]), published, retry=FAST)
    assert [(r.seq, r.kind.value, r.value) for r in published if r.seq == 0] == [
        (0, "progress", {"current": 1, "total": None, "message": None}),
        (0, "result", "one"),
    ]
    assert published.kinds()[-3:] == [(1, "progress"), (1, "result"), (2, "done")]


@pytest.mark.parametrize(
    ("current", "total", "message"),
    [
        (math.nan, None, None),
        (1, math.inf, None),
        (-1, None, None),
        (True, None, None),
        (1, None, "x" * 201),
        (1, None, "line\x00break"),
        ("1", None, None),
    ],
)
async def test_a_value_no_reply_may_carry_is_refused_to_the_step(current, total, message):
    ctx = StepContext(7, 0, job().request, None)
    with pytest.raises(ValueError, match="validation error"):
        await ctx.progress(current, total, message)
