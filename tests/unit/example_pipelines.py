"""A user's pipeline module, as the README shows it."""

from consumer import Pipeline, StepContext

shout = Pipeline("shout")


@shout.step
async def upper(ctx: StepContext) -> str:
    return ctx.request.deployment.upper()


@shout.step
async def exclaim(ctx: StepContext) -> str:
    return f"{ctx.previous}!"
