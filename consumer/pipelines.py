"""Pipelines: named, ordered lists of steps, and where workers find them.

A pipeline is declared in user code with one object and one decorator per step::

    from consumer import Pipeline, StepContext

    thumbnail = Pipeline("thumbnail")

    @thumbnail.step
    async def fetch(ctx: StepContext) -> str:
        return f"fetched {ctx.request.deployment}"

Workers load every Pipeline found in the modules named by `JOBCAST_PIPELINES`.
"""

import asyncio
import importlib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from pydantic import JsonValue

from consumer.progress import ProgressReporter
from contracts import JobRequest, StepProgress, UnknownPipelineError
from contracts.messages import MAX_STEPS


@dataclass(frozen=True)
class StepContext:
    """What a step receives: the job, where it is, and the previous step's result."""

    offset: int
    seq: int
    request: JobRequest
    previous: JsonValue
    """The previous step's result (None for the first step), also after a resume."""
    attempt: int = 1
    reporter: ProgressReporter | None = field(default=None, repr=False, compare=False)
    """Where `progress` sends its ticks (run_job gives one; None: they go nowhere)."""
    cancelled: asyncio.Event = field(default_factory=asyncio.Event, repr=False, compare=False)
    """Set when the job is cancelled while this step runs. The step is not interrupted: one
    that looks may stop early, returning what it has (recorded as its result) or raising
    (nothing recorded for it); either way no further step runs and the job ends `cancelled`."""

    async def progress(
        self, current: float, total: float | None = None, message: str | None = None
    ) -> None:
        """Tell every follower how far this step got (e.g. 40 of 100, "resizing").

        Published at once as a `progress` reply (at most one per job every 0.1 s; the latest
        always goes out, before the step's result); never among the job's results. ValueError
        for what no reply may carry: a negative, NaN or infinite number, a message over 200
        characters or with control characters.
        """
        value = StepProgress(current=current, total=total, message=message)
        if self.reporter is not None:
            await self.reporter.report(self.seq, value)


Step = Callable[[StepContext], Awaitable[JsonValue]]


@dataclass
class Pipeline:
    """An ordered list of steps, selected by a job's `fn`."""

    name: str
    steps: list[Step] = field(default_factory=list)
    done_value: JsonValue = "done"
    """The value of the final `done` reply."""

    def step(self, fn: Step) -> Step:
        """Decorator: append `fn` as the next step."""
        self.steps.append(fn)
        return fn


class Registry:
    """The pipelines a worker can run, by name."""

    def __init__(self, pipelines: Iterable[Pipeline] = ()) -> None:
        self._by_name: dict[str, Pipeline] = {}
        for pipeline in pipelines:
            self.add(pipeline)

    def add(self, pipeline: Pipeline) -> None:
        """Register a pipeline; two with one name are a configuration error."""
        if pipeline.name in self._by_name:
            raise ValueError(f"two pipelines are named {pipeline.name!r}")
        if not pipeline.steps:
            raise ValueError(f"pipeline {pipeline.name!r} has no steps")
        if len(pipeline.steps) > MAX_STEPS:
            raise ValueError(f"pipeline {pipeline.name!r} has more than {MAX_STEPS} steps")
        self._by_name[pipeline.name] = pipeline

    def get(self, fn: str) -> Pipeline:
        """The pipeline named `fn`, or UnknownPipelineError."""
        try:
            return self._by_name[fn]
        except KeyError:
            raise UnknownPipelineError(fn, self.names()) from None

    def __contains__(self, fn: object) -> bool:
        return fn in self._by_name

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        return sorted(self._by_name)


def load_registry(modules: Iterable[str], *, builtin: Iterable[Pipeline] = ()) -> Registry:
    """A registry of the `builtin` pipelines and every Pipeline defined at the top level of the
    named modules."""
    found: list[Pipeline] = list(builtin)
    for name in modules:
        module = importlib.import_module(name)
        found.extend(v for v in vars(module).values() if isinstance(v, Pipeline))
    return Registry(found)
