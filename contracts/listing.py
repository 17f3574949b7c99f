"""The answers of the jobs list and the fleet figures: GET /jobs and GET /stats."""

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from contracts.messages import MAX_OFFSET, JobState, Tag

MAX_PAGE = 500
DEFAULT_PAGE = 50
MAX_STATS_MINUTES = 1440
DEFAULT_STATS_MINUTES = 15


class JobRow(BaseModel):
    """One job in the list: what it is, where it stands, how long it took."""

    offset: Annotated[int, Field(ge=0, le=MAX_OFFSET)]
    fn: str
    state: JobState
    tags: list[Tag]
    steps: int = Field(ge=0, description="Steps recorded so far (the final reply not counted).")
    created_at: datetime
    updated_at: datetime
    duration_seconds: float | None = Field(
        description="From scheduled to its final reply; null until the job has ended."
    )
    error: str | None = Field(description="Why it failed; null unless failed.")


class JobPage(BaseModel):
    """A page of GET /jobs, newest first."""

    jobs: list[JobRow]
    next: str | None = Field(
        description="Pass as `cursor` for the next (older) page; null on the last page."
    )


class JobFilter(BaseModel):
    """Which jobs a list or a feed shows: every condition given must hold."""

    model_config = {"frozen": True}

    state: JobState | None = None
    fn: str | None = None
    tag: Tag | None = None
    since: datetime | None = None
    until: datetime | None = None
    owner: str | None = None
    """Only the jobs this API key scheduled (set from the caller's key, never from the query
    string; None: every job, with auth off or an admin key)."""


class QueueFigures(BaseModel):
    """What a passive declare of the job and dead-letter queues says right now."""

    jobs_waiting: int = Field(ge=0, description="Messages ready in jobcast.jobs.")
    workers: int = Field(ge=0, description="Consumers of jobcast.jobs (one per worker).")
    dead_letters: int = Field(ge=0, description="Messages in jobcast.dead.")


class Stats(QueueFigures):
    """GET /stats: the ledger's counts and the queues' figures."""

    minutes: int = Field(description="The window the counts cover.")
    counts: dict[JobState, int] = Field(
        description="Jobs created in the last `minutes`, by their state now (every state listed)."
    )
    throughput_per_second: float = Field(
        description="Jobs that ended done in the last 60 s, divided by 60."
    )
    completed_per_minute: list[int] = Field(
        description="Jobs that ended done in each of the last `minutes` minutes, oldest first; "
        "the last entry is the minute up to now."
    )
