"""A pipeline whose step only finishes once `GROUP` jobs are inside it at the same time."""

import asyncio

from consumer import Pipeline, StepContext

GROUP = 5
arrived: list[int] = []
everyone_here = asyncio.Event()

rendezvous = Pipeline("rendezvous")


@rendezvous.step
async def meet(ctx: StepContext) -> int:
    arrived.append(ctx.offset)
    if len(arrived) >= GROUP:
        everyone_here.set()
    await asyncio.wait_for(everyone_here.wait(), timeout=20)
    return len(arrived)
