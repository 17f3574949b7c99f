"""Running a job: results published in order, retries, failures, resume and hand-back."""

import asyncio
import itertools

import pytest

from consumer.pipelines import Pipeline, StepContext
from consumer.runner import Outcome, RetryPolicy, backoff_seconds, run_job
from contracts import (
    Job,
    JobRecord,
    JobRequest,
    JobState,
    PermanentStepError,
    Progress,
    Reply,
    ReplyKind,
)
from tests.support.waiting import eventually

FAST = RetryPolicy(attempts=3, initial_seconds=0, max_seconds=0)


def job(fn: str = "p", offset: int = 7) -> Job:
    return Job(offset=offset, request=JobRequest(deployment="Docker", framework="FastAPI", fn=fn))


class Published(list[Reply]):
    async def __call__(self, reply: Reply) -> None:
        self.append(reply)

    def values(self) -> list[object]:
        return [(r.seq, r.kind.value, r.value) for r in self]


def counting(name: str = "p", steps: int = 3) -> tuple[Pipeline, list[int]]:
    ran: list[int] = []

    async def step(ctx: StepContext) -> str:
        ran.append(ctx.seq)
        return f"{ctx.previous or ''}{ctx.seq}"

    return Pipeline(name, steps=[step] * steps), ran


async def test_each_result_then_done_in_step_order():
    pipeline, _ = counting()
    published = Published()
    result = await run_job(job(), pipeline, published, retry=FAST)
    assert result.outcome is Outcome.DONE
    assert published.values() == [
        (0, "result", "0"),
        (1, "result", "01"),
        (2, "result", "012"),
        (3, "done", "done"),
    ]
    assert {r.offset for r in published} == {7}


async def test_each_result_is_published_before_the_next_step_starts():
    published = Published()
    seen_before_step: list[int] = []

    async def step(ctx: StepContext) -> int:
        seen_before_step.append(len(published))
        return ctx.seq

    await run_job(job(), Pipeline("p", steps=[step] * 3), published, retry=FAST)
    assert seen_before_step == [0, 1, 2]


async def test_a_resumed_job_continues_after_its_last_recorded_step():
    pipeline, ran = counting()
    published = Published()
    start = Progress(offset=7, next_seq=2, previous="01")
    await run_job(job(), pipeline, published, start=start, retry=FAST)
    assert ran == [2]
    assert published.values() == [(2, "result", "012"), (3, "done", "done")]


async def test_a_flaky_step_is_retried_until_it_succeeds():
    calls = 0

    async def flaky(ctx: StepContext) -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise RuntimeError("not yet")
        return f"ok after {ctx.attempt}"

    published = Published()
    result = await run_job(job(), Pipeline("p", steps=[flaky]), published, retry=FAST)
    assert result.outcome is Outcome.DONE
    assert published.values()[0] == (0, "result", "ok after 3")


async def test_a_step_that_keeps_failing_fails_the_job_with_its_reason():
    async def broken(ctx: StepContext) -> str:
        raise ValueError("disk on fire")

    published = Published()
    result = await run_job(job(), Pipeline("p", steps=[broken]), published, retry=FAST)
    assert result.outcome is Outcome.FAILED
    (error,) = published
    assert (error.seq, error.kind) == (0, ReplyKind.ERROR)
    assert "disk on fire" in str(error.value)
    assert "ValueError" in str(error.value)


async def test_a_permanent_error_is_not_retried():
    calls = 0

    async def refuses(ctx: StepContext) -> str:
        nonlocal calls
        calls += 1
        raise PermanentStepError("bad input")

    result = await run_job(job(), Pipeline("p", steps=[refuses]), Published(), retry=FAST)
    assert (result.outcome, calls) == (Outcome.FAILED, 1)


async def test_backoff_grows_between_attempts():
    moments: list[float] = []

    async def broken(ctx: StepContext) -> str:
        moments.append(asyncio.get_running_loop().time())
        raise RuntimeError

    policy = RetryPolicy(attempts=3, initial_seconds=0.05, max_seconds=1)
    await run_job(job(), Pipeline("p", steps=[broken]), Published(), retry=policy)
    gaps = [b - a for a, b in itertools.pairwise(moments)]
    assert len(gaps) == 2
    assert gaps[0] >= 0.05
    assert gaps[1] >= 0.1


async def test_a_stopping_worker_hands_the_job_back_after_the_running_step():
    stopping = asyncio.Event()

    async def step(ctx: StepContext) -> int:
        stopping.set()  # SIGTERM arrives while the first step runs
        return ctx.seq

    published = Published()
    result = await run_job(
        job(), Pipeline("p", steps=[step] * 3), published, retry=FAST, stopping=stopping
    )
    assert result.outcome is Outcome.HANDED_BACK
    assert published.values() == [(0, "result", 0)]


@pytest.mark.parametrize("ok", [True, False])
async def test_every_attempt_is_observed(ok):
    seen: list[tuple[str, int, bool]] = []

    async def step(ctx: StepContext) -> int:
        if not ok:
            raise RuntimeError
        return 1

    await run_job(
        job(),
        Pipeline("p", steps=[step]),
        Published(),
        retry=FAST,
        observe=lambda fn, seq, seconds, good: seen.append((fn, seq, good)),
    )
    assert seen == ([("p", 0, True)] if ok else [("p", 0, False)] * 3)


async def test_replies_are_pipelined_and_the_run_ends_only_once_all_are_confirmed():
    confirm = asyncio.Event()
    started: list[int] = []

    async def publish(reply: Reply) -> None:
        started.append(reply.seq)
        await confirm.wait()  # the broker has not confirmed yet

    pipeline, _ = counting()
    running = asyncio.ensure_future(run_job(job(), pipeline, publish, retry=FAST))

    async def on_their_way() -> list[int]:
        return started

    await eventually(on_their_way, until=lambda s: len(s) >= 4, timeout=5, what="4 replies out")
    assert started == [0, 1, 2, 3]  # every reply on its way, in seq order, none confirmed
    assert not running.done()  # so the job cannot be acknowledged yet
    confirm.set()
    assert (await running).outcome is Outcome.DONE


async def test_an_unconfirmed_reply_fails_the_run_after_the_rest_settle():
    from contracts import BrokerUnavailableError

    async def publish(reply: Reply) -> None:
        await asyncio.sleep(0.01)
        if reply.seq == 1:
            raise BrokerUnavailableError("nacked")

    pipeline, _ = counting()
    with pytest.raises(BrokerUnavailableError):
        await run_job(job(), pipeline, publish, retry=FAST)


async def test_a_confirm_that_never_comes_fails_the_run_after_the_confirm_timeout():
    from contracts import BrokerUnavailableError

    async def publish(reply: Reply) -> None:
        await asyncio.Event().wait()  # the broker never answers

    pipeline, _ = counting()
    began = asyncio.get_running_loop().time()
    with pytest.raises(BrokerUnavailableError, match=r"within 0\.2s"):
        await run_job(job(), pipeline, publish, retry=FAST, confirm_timeout=0.2)
    assert asyncio.get_running_loop().time() - began < 2


def test_backoff_doubles_up_to_the_cap_plus_jitter():
    policy = RetryPolicy(attempts=10, initial_seconds=0.5, max_seconds=3)
    for failed, base in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 3.0), (9, 3.0)]:
        wait = backoff_seconds(policy, failed)
        assert base <= wait <= base + 0.5, (failed, wait)


def nested(depth: int) -> object:
    value: object = []
    for _ in range(depth):
        value = [value]
    return value


async def test_a_result_nested_as_deep_as_readers_parse_is_published_and_reads_back():
    async def deep(ctx: StepContext) -> object:
        return nested(190)

    published = Published()
    result = await run_job(job(), Pipeline("p", steps=[deep]), published)

    assert result.outcome is Outcome.DONE
    record = JobRecord(
        offset=1,
        state=JobState.DONE,
        request=job().request,
        replies=list(published),
        created_at=published[0].produced_at,
        updated_at=published[0].produced_at,
    )
    assert JobRecord.model_validate_json(record.model_dump_json()) == record


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ({1, 2}, "returned a value that is not JSON"),
        ("\ud800", "returned a value that is not JSON"),
        ("x" * 2_000_000, "bytes of JSON; a result may take at most"),
        # Found by review: nested this deep it was published, the recorder's parser refused
        # it (pydantic's JSON nests at most 200 levels) and the job waited for it for ever
        (nested(200), "nested deeper than"),
        (nested(250), "nested deeper than"),
    ],
    ids=["a set", "a lone surrogate", "two megabytes", "nested 200 deep", "nested 250 deep"],
)
async def test_a_result_no_reply_can_carry_fails_the_job_with_the_reason(value, why):
    async def first(ctx: StepContext) -> str:
        return "fine"

    async def second(ctx: StepContext) -> object:
        return value

    published = Published()
    result = await run_job(job(), Pipeline("p", steps=[first, second, first]), published)

    assert result.outcome is Outcome.FAILED
    assert why in (result.reason or "")
    assert [(r.seq, r.kind) for r in published] == [(0, ReplyKind.RESULT), (1, ReplyKind.ERROR)]
    assert published[1].value == result.reason


async def test_a_result_over_the_configured_limit_fails_the_job_naming_the_setting():
    async def big(ctx: StepContext) -> str:
        return "x" * 200

    published = Published()
    result = await run_job(job(), Pipeline("p", steps=[big]), published, max_result_bytes=100)

    assert result.outcome is Outcome.FAILED
    assert "202 bytes of JSON; a result may take at most 100" in (result.reason or "")
    assert "JOBCAST_MAX_RESULT_BYTES" in (result.reason or "")
    assert [r.kind for r in published] == [ReplyKind.ERROR]
