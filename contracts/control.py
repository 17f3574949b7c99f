"""Steering a job after it was scheduled: cancelling it, and when a delayed one starts."""

from datetime import datetime, timedelta
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from contracts.errors import JobcastError
from contracts.messages import (
    CLOCK_SKEW_SECONDS,
    MAX_DELAY_SECONDS,
    MAX_OFFSET,
    JobRequest,
    JobState,
)

CONTROL_MESSAGE_BYTES = 1024
"""A control message is `{"offset": n}`; anything much larger is not one."""


class CancelRequest(BaseModel):
    """Cancel job `offset`: on jobcast.cancel over AMQP, as POST /jobs/{offset}/cancel."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    offset: Annotated[int, Field(ge=0, le=MAX_OFFSET)]


class CancelJob(BaseModel):
    """A control message on jobcast.control, signed by a gateway: every worker stops job
    `offset` before its next step (the step running sees `ctx.cancelled`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    offset: Annotated[int, Field(ge=0, le=MAX_OFFSET)]


class CancelAccepted(BaseModel):
    """The answer to a cancel: `cancelled` if the job has ended so, else its state now (its
    worker stops it before its next step and it ends `cancelled`)."""

    offset: Annotated[int, Field(ge=0, examples=[0])]
    state: Annotated[JobState, Field(examples=["cancelled"])]


class CancelRejected(BaseModel):
    """The answer to an AMQP cancel that could not be accepted (`error`: `unknown_offset`,
    `finished`, `invalid_request`, `unavailable`, `unauthorized`)."""

    error: str
    detail: str


class DelayError(JobcastError):
    """A run_at too far in the past or the future (HTTP 422)."""


class JobFinishedError(JobcastError):
    """The job ended done or failed before it could be cancelled: nothing changed (HTTP 409)."""

    def __init__(self, offset: int, state: JobState | None = None) -> None:
        ended = f": {state.value}" if state is not None else ""
        super().__init__(f"job {offset} has already ended{ended}")
        self.offset = offset
        self.state = state


def due_at(request: JobRequest, now: datetime) -> datetime | None:
    """When a delayed request's job is to start (None: at once); DelayError if it is out of
    bounds: a run_at more than CLOCK_SKEW_SECONDS behind `now` or MAX_DELAY_SECONDS ahead."""
    if request.delay_seconds is not None:
        return now + timedelta(seconds=request.delay_seconds)
    if request.run_at is None:
        return None
    ahead = (request.run_at - now).total_seconds()
    if ahead < -CLOCK_SKEW_SECONDS:
        raise DelayError(
            f"run_at is {-ahead:.0f} seconds in the past (at most {CLOCK_SKEW_SECONDS} allowed)"
        )
    if ahead > MAX_DELAY_SECONDS:
        raise DelayError(f"run_at is more than {MAX_DELAY_SECONDS} seconds ahead")
    return max(request.run_at, now)
