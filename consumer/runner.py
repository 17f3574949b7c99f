"""Running one job's pipeline step by step: plain asyncio, no broker in sight."""

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from enum import StrEnum

import orjson
import pydantic_core
from pydantic import JsonValue

from consumer.pipelines import Pipeline, StepContext
from consumer.progress import PROGRESS_SECONDS, ProgressReporter
from contracts import BrokerUnavailableError, Job, PermanentStepError, Progress, Reply, ReplyKind
from contracts.messages import MAX_RESULT_BYTES

logger = logging.getLogger(__name__)

PublishReply = Callable[[Reply], Awaitable[None]]
"""Publishes a reply and returns once the broker confirmed it (BrokerUnavailableError if it
will not); `run_job` bounds how long it waits."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often, and how patiently, a failing step is tried again."""

    attempts: int = 3
    initial_seconds: float = 0.5
    max_seconds: float = 10.0


class Outcome(StrEnum):
    """How a run ended."""

    DONE = "done"
    FAILED = "failed"
    HANDED_BACK = "handed_back"
    """The worker is stopping: the job goes back to the queue and resumes elsewhere."""
    CANCELLED = "cancelled"
    """The job was cancelled: it ended with a `cancelled` reply before its next step."""


@dataclass(frozen=True)
class RunResult:
    """How a run ended, and why if it failed."""

    outcome: Outcome
    reason: str | None = None
    steps_run: int = 0


StepObserver = Callable[[str, int, float, bool], None]
"""Told (fn, seq, seconds, ok) after every step attempt: metrics hook."""


async def run_job(
    job: Job,
    pipeline: Pipeline,
    publish: PublishReply,
    *,
    start: Progress | None = None,
    retry: RetryPolicy = RetryPolicy(),
    stopping: asyncio.Event | None = None,
    observe: StepObserver | None = None,
    confirm_timeout: float | None = None,
    progress_seconds: float = PROGRESS_SECONDS,
    cancelled: asyncio.Event | None = None,
    max_result_bytes: int = MAX_RESULT_BYTES,
) -> RunResult:
    """Run the pipeline from `start` (a resume point) on, publishing each result as it exists.

    Once `cancelled` is set no further step starts: the job ends with a `cancelled` reply
    (the running step sees the event as `ctx.cancelled`, and is not interrupted).

    A reply is published the moment its step ends and the next step starts at once; the run
    returns only when every reply is confirmed (raising the first publish failure, or
    BrokerUnavailableError when a confirm is `confirm_timeout` seconds late), so the job is
    acknowledged only after its last reply is confirmed.
    """
    start = start or Progress(offset=job.offset, next_seq=0)
    confirms = _Confirms(publish, confirm_timeout)
    reporter = ProgressReporter(job.offset, publish, progress_seconds)
    try:
        return await _run_steps(
            job,
            pipeline,
            start,
            confirms,
            reporter,
            retry,
            stopping,
            observe,
            cancelled or asyncio.Event(),
            max_result_bytes,
        )
    finally:
        reporter.close()


async def _run_steps(
    job: Job,
    pipeline: Pipeline,
    start: Progress,
    confirms: "_Confirms",
    reporter: ProgressReporter,
    retry: RetryPolicy,
    stopping: asyncio.Event | None,
    observe: StepObserver | None,
    cancelled: asyncio.Event,
    max_result_bytes: int,
) -> RunResult:
    previous: JsonValue = start.previous
    steps_run = 0
    for seq in range(start.next_seq, len(pipeline.steps)):
        if cancelled.is_set():
            return await _end_cancelled(job, seq, confirms, steps_run)
        if stopping is not None and stopping.is_set():
            await confirms.wait()
            return RunResult(Outcome.HANDED_BACK, steps_run=steps_run)
        ctx = StepContext(
            job.offset, seq, job.request, previous, reporter=reporter, cancelled=cancelled
        )
        try:
            previous = await _run_step(pipeline, ctx, retry, observe)
        except Exception as exc:  # a step's own failure, after its retries: the job fails
            reporter.settle(seq)
            if cancelled.is_set():  # a step that stopped early by raising: nothing to record
                return await _end_cancelled(job, seq, confirms, steps_run + 1)
            reason = f"step {seq} of {pipeline.name!r} failed: {type(exc).__name__}: {exc}"
            await confirms.send(
                Reply(offset=job.offset, seq=seq, kind=ReplyKind.ERROR, value=reason)
            )
            await confirms.wait()
            return RunResult(Outcome.FAILED, reason=reason, steps_run=steps_run + 1)
        steps_run += 1
        reporter.settle(seq)
        try:
            result = _result_reply(job, seq, previous, max_result_bytes)
        except UnpublishableResultError as exc:
            reason = f"step {seq} of {pipeline.name!r} {exc}"
            await confirms.send(
                Reply(offset=job.offset, seq=seq, kind=ReplyKind.ERROR, value=reason)
            )
            await confirms.wait()
            return RunResult(Outcome.FAILED, reason=reason, steps_run=steps_run)
        await confirms.send(result)
    done_seq = len(pipeline.steps)
    if cancelled.is_set():
        return await _end_cancelled(job, done_seq, confirms, steps_run)
    await confirms.send(
        Reply(offset=job.offset, seq=done_seq, kind=ReplyKind.DONE, value=pipeline.done_value)
    )
    await confirms.wait()
    return RunResult(Outcome.DONE, steps_run=steps_run)


async def _end_cancelled(job: Job, seq: int, confirms: "_Confirms", steps_run: int) -> RunResult:
    """End a cancelled job with its `cancelled` reply at `seq`, once every reply is confirmed."""
    await confirms.send(cancelled_reply(job.offset, seq))
    await confirms.wait()
    return RunResult(Outcome.CANCELLED, steps_run=steps_run)


def cancelled_reply(offset: int, seq: int) -> Reply:
    """The final reply of a job cancelled before step `seq` (or its done)."""
    return Reply(offset=offset, seq=seq, kind=ReplyKind.CANCELLED, value="cancelled")


class UnpublishableResultError(Exception):
    """A step returned what no reply can carry: not JSON, or too large."""


_ENVELOPE_DEPTH = 3
"""How deep a result sits in what readers parse: GET /jobs/{offset} (`{"replies": [{"value":`)."""


def _result_reply(job: Job, seq: int, value: JsonValue, max_bytes: int) -> Reply:
    """The reply carrying a step's result; UnpublishableResultError if it cannot be one."""
    try:
        encoded = orjson.dumps(value)
        reply = Reply(offset=job.offset, seq=seq, kind=ReplyKind.RESULT, value=value)
    except (TypeError, ValueError) as exc:  # orjson's JSONEncodeError, pydantic's ValidationError
        raise UnpublishableResultError(f"returned a value that is not JSON: {exc}") from None
    if len(encoded) > max_bytes:
        raise UnpublishableResultError(
            f"returned {len(encoded)} bytes of JSON; a result may take at most {max_bytes}"
            " (JOBCAST_MAX_RESULT_BYTES)"
        )
    # NOTE: parsed as its readers parse it (pydantic's JSON, which nests at most 200 levels),
    # inside its envelope: nested deeper, the recorder refused the reply as invalid and the
    # job waited for that step's result for ever.
    wrapped = b"[" * _ENVELOPE_DEPTH + encoded + b"]" * _ENVELOPE_DEPTH
    try:
        pydantic_core.from_json(wrapped)
    except ValueError as exc:
        raise UnpublishableResultError(
            f"returned JSON nested deeper than a reply can carry: {exc}"
        ) from None
    return reply


class _Confirms:
    """One job's replies in flight: published in seq order, confirmed in any order."""

    def __init__(self, publish: PublishReply, timeout: float | None) -> None:
        self._publish = publish
        self._timeout = timeout
        self._pending: list[asyncio.Future[None]] = []

    async def send(self, reply: Reply) -> None:
        """Start publishing `reply` now, without waiting for its confirm."""
        self._raise_if_failed()
        future = asyncio.ensure_future(self._publish(reply))
        future.add_done_callback(_retrieve)
        self._pending.append(future)
        # NOTE: one turn of the loop lets the publish reach the channel (or queue FIFO on its
        # lock) before the next step can publish, so one job's replies hit the wire in seq
        # order; RabbitMQ keeps a channel's order into a queue. Waiting for each confirm
        # instead cost one broker round trip per step (see bench/README.md).
        await asyncio.sleep(0)

    async def wait(self) -> None:
        """Return once every reply is confirmed; raise the first failure if one was not."""
        # NOTE: one deadline for all of them, not one per publish: a timer per reply cost ~10%
        # of a worker's CPU under load (py-spy, bench/).
        try:
            async with asyncio.timeout(self._timeout):
                outcomes = await asyncio.gather(*self._pending, return_exceptions=True)
        except TimeoutError:
            raise BrokerUnavailableError(
                f"RabbitMQ did not confirm a reply within {self._timeout}s"
            ) from None
        finally:
            self._pending.clear()
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    def _raise_if_failed(self) -> None:
        for future in self._pending:
            if future.done() and not future.cancelled() and future.exception() is not None:
                raise future.exception()  # type: ignore[misc]


def _retrieve(future: "asyncio.Future[None]") -> None:
    """Mark a publish failure as seen: `wait` reports the first one, the rest are the same."""
    if not future.cancelled():
        future.exception()


async def _run_step(
    pipeline: Pipeline, ctx: StepContext, retry: RetryPolicy, observe: StepObserver | None
) -> JsonValue:
    """Run one step, retrying with exponential backoff and jitter; the last failure propagates."""
    # NOTE: a plain loop, not tenacity's: building a retry loop for every step cost ~12% of a
    # worker's CPU under load (py-spy, bench/), and almost every step succeeds at once.
    for number in range(1, retry.attempts + 1):
        try:
            return await _attempt(pipeline, ctx, number, observe)
        except PermanentStepError:
            raise
        except Exception:
            if number == retry.attempts or ctx.cancelled.is_set():
                raise
        await asyncio.sleep(backoff_seconds(retry, number))
    raise AssertionError("unreachable: the last attempt returns or raises")  # pragma: no cover


def backoff_seconds(retry: RetryPolicy, failed_attempts: int) -> float:
    """How long to wait after `failed_attempts` failures: doubling, capped, plus jitter."""
    exponential = retry.initial_seconds * 2.0 ** (failed_attempts - 1)
    return min(exponential, retry.max_seconds) + random.uniform(0, retry.initial_seconds)


async def _attempt(
    pipeline: Pipeline, ctx: StepContext, number: int, observe: StepObserver | None
) -> JsonValue:
    step = pipeline.steps[ctx.seq]
    loop = asyncio.get_running_loop()
    began = loop.time()
    try:
        value = await step(replace(ctx, attempt=number))
    except Exception:
        logger.warning(
            "step failed offset=%s fn=%s seq=%s attempt=%s",
            ctx.offset,
            pipeline.name,
            ctx.seq,
            number,
            exc_info=True,
        )
        if observe is not None:
            observe(pipeline.name, ctx.seq, loop.time() - began, False)
        raise
    if observe is not None:
        observe(pipeline.name, ctx.seq, loop.time() - began, True)
    return value
