"""What a worker does with a delivered job, decided without a broker: refused unread, failed
unrun, acked as already finished, run (from where it got to), or handed back."""

import orjson

from consumer.decisions import (
    Ack,
    Delivered,
    Fail,
    GiveUp,
    HandBack,
    Run,
    after_run,
    decide,
    needs_resume_point,
    read_job,
)
from consumer.deliveries import crashes
from consumer.pipelines import Pipeline, Registry, StepContext
from consumer.runner import Outcome, RunResult
from contracts import Job, JobRequest, Progress, ReplyKind
from contracts.errors import DeadLetterReason
from contracts.headers import HEADER_CRASHES, HEADER_SIGNATURE
from contracts.messages import MAX_REQUEST_BYTES
from contracts.signing import Signer

CAP = 8
SIGNER = Signer("test key")


async def _step(ctx: StepContext) -> str:
    return "ok"


THREE_STEPS = Pipeline("three", steps=[_step, _step, _step])
REGISTRY = Registry([THREE_STEPS])


def job(fn: str = "three") -> Job:
    return Job(offset=42, request=JobRequest(deployment="Docker", framework="FastAPI", fn=fn))


def delivered(fn: str = "three", *, crashed: int = 0, may_have_run: bool = False) -> Delivered:
    return Delivered(job(fn), crashes=crashed, may_have_run=may_have_run)


def signed(body: bytes) -> tuple[bytes, str]:
    return body, SIGNER.sign(body)


# -- refused unread ---------------------------------------------------------------------------


def test_a_signed_job_is_read():
    sent = job()
    body, signature = signed(sent.model_dump_json().encode())
    assert read_job(body, signature, SIGNER) == sent


def test_a_job_without_a_signature_is_refused_as_unsigned():
    body = job().model_dump_json().encode()
    assert read_job(body, None, SIGNER) == GiveUp(
        DeadLetterReason.UNSIGNED, f"unsigned job: no {HEADER_SIGNATURE}"
    )


def test_a_job_signed_with_another_key_is_refused_as_unsigned():
    body = job().model_dump_json().encode()
    forged = Signer("another key").sign(body)
    assert read_job(body, forged, SIGNER) == GiveUp(
        DeadLetterReason.UNSIGNED, f"unsigned job: a wrong {HEADER_SIGNATURE}"
    )


def test_a_job_too_large_is_refused_before_its_signature_is_checked():
    body, signature = signed(b" " * (MAX_REQUEST_BYTES + 1))
    assert read_job(body, signature, SIGNER) == GiveUp(
        DeadLetterReason.TOO_LARGE, f"too large: a job of {MAX_REQUEST_BYTES + 1} bytes"
    )


def test_a_signed_body_that_is_not_a_job_is_refused_as_invalid():
    body, signature = signed(orjson.dumps({"offset": -1, "request": {}}))
    refused = read_job(body, signature, SIGNER)
    assert isinstance(refused, GiveUp)
    assert refused.reason is DeadLetterReason.INVALID_JOB
    assert refused.detail.startswith("invalid job: offset:")


# -- decided before the run -------------------------------------------------------------------


def test_a_first_delivery_runs_from_the_first_step_without_asking_where_it_got():
    assert not needs_resume_point(delivered(), REGISTRY)
    assert decide(delivered(), REGISTRY, None, max_deliveries=CAP) == Run(THREE_STEPS, None)


def test_an_unknown_fn_fails_the_job_with_an_error_reply_naming_the_pipelines_there_are():
    unknown = delivered("nope", may_have_run=True)
    assert not needs_resume_point(unknown, REGISTRY)
    decision = decide(unknown, REGISTRY, None, max_deliveries=CAP)
    assert isinstance(decision, Fail)
    assert decision.reason is DeadLetterReason.UNKNOWN_PIPELINE
    assert (decision.reply.offset, decision.reply.seq) == (42, 0)
    assert decision.reply.kind is ReplyKind.ERROR
    assert "'nope'" in decision.detail
    assert "three" in decision.detail
    assert decision.reply.value == decision.detail


def test_a_job_that_may_have_run_resumes_after_its_last_recorded_step():
    again = delivered(crashed=1, may_have_run=True)
    assert needs_resume_point(again, REGISTRY)
    start = Progress(offset=42, next_seq=2, previous="ok")
    assert decide(again, REGISTRY, start, max_deliveries=CAP) == Run(THREE_STEPS, start)


def test_a_job_whose_resume_point_is_unknown_starts_over():
    again = delivered(crashed=1, may_have_run=True)
    assert decide(again, REGISTRY, None, max_deliveries=CAP) == Run(THREE_STEPS, None)


def test_an_already_finished_job_is_acked_even_at_the_crash_cap():
    finished = Progress(offset=42, next_seq=4, previous="done", finished=True)
    for crashed in (0, CAP):
        again = delivered(crashed=crashed, may_have_run=True)
        assert decide(again, REGISTRY, finished, max_deliveries=CAP) == Ack()


def test_a_job_at_the_crash_cap_fails_at_the_step_it_got_to():
    looping = delivered(crashed=CAP, may_have_run=True)
    start = Progress(offset=42, next_seq=1, previous="ok")
    decision = decide(looping, REGISTRY, start, max_deliveries=CAP)
    assert isinstance(decision, Fail)
    assert decision.reason is DeadLetterReason.CRASH_LOOP
    assert decision.detail == (
        f"gave up after {CAP} deliveries: each time, the worker running the job died or lost "
        "the broker"
    )
    assert (decision.reply.seq, decision.reply.kind) == (1, ReplyKind.ERROR)


def test_a_job_at_the_crash_cap_without_a_resume_point_fails_at_seq_0():
    looping = delivered(crashed=CAP, may_have_run=True)
    decision = decide(looping, REGISTRY, None, max_deliveries=CAP)
    assert isinstance(decision, Fail)
    assert decision.reply.seq == 0


def test_crashes_carried_over_from_hand_backs_count_toward_the_cap():
    carried = crashes({HEADER_CRASHES: 5, "x-delivery-count": 3}, CAP)
    looping = delivered(crashed=carried, may_have_run=True)
    decision = decide(looping, REGISTRY, None, max_deliveries=CAP)
    assert isinstance(decision, Fail)
    assert decision.reason is DeadLetterReason.CRASH_LOOP

    below = crashes({HEADER_CRASHES: 5, "x-delivery-count": 2}, CAP)
    again = delivered(crashed=below, may_have_run=True)
    assert decide(again, REGISTRY, None, max_deliveries=CAP) == Run(THREE_STEPS, None)


# -- decided after the run --------------------------------------------------------------------


def test_a_finished_run_is_acked():
    assert after_run(RunResult(Outcome.DONE, steps_run=3), None) == Ack()


def test_a_failed_run_is_dead_lettered_with_its_reason_and_no_second_reply():
    failed = RunResult(Outcome.FAILED, reason="step 1 of 'three' failed: boom", steps_run=2)
    assert after_run(failed, None) == GiveUp(
        DeadLetterReason.STEP_FAILED, "step 1 of 'three' failed: boom"
    )


def test_a_run_handed_back_resumes_after_the_steps_it_ran():
    handed_back = RunResult(Outcome.HANDED_BACK, steps_run=1)
    assert after_run(handed_back, None) == HandBack(next_seq=1)
    resumed_at = Progress(offset=42, next_seq=2, previous="ok")
    assert after_run(handed_back, resumed_at) == HandBack(next_seq=3)
