"""Batches: many job requests scheduled together, all or nothing (POST /schedule/batch and
jobcast.schedule.batch)."""

from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts.messages import MAX_OFFSET, MAX_TAGS, TAG_LENGTH, JobRequest
from contracts.text import IdempotencyKey

MAX_BATCH_JOBS = 1000
"""The most jobs one batch may hold."""

MAX_BATCH_BYTES = 8 * 1024 * 1024
"""The largest batch message (its JSON) jobcast reads, over HTTP or AMQP: a thousand requests
of a typical size are about 100 KiB; JOBCAST_MAX_BATCH_BODY_BYTES may not exceed this."""

BATCH_TAG_PREFIX = "batch:"

BatchId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=TAG_LENGTH - len(BATCH_TAG_PREFIX),
        pattern=r"^[A-Za-z0-9_.:/-]+$",
        examples=["nightly-2026-11-30"],
    ),
]
"""A caller's name for a batch; every job of it gets the tag `batch:<id>`."""


def batch_tag(batch: str) -> str:
    """The tag every job of batch `batch` carries."""
    return f"{BATCH_TAG_PREFIX}{batch}"


class BatchItem(JobRequest):
    """One job of a batch: a JobRequest, with its own idempotency key if the caller sends one."""

    idempotency_key: IdempotencyKey | None = Field(
        None,
        description="As the Idempotency-Key of POST /schedule, for this job alone: a repeated "
        "batch answers the same offsets.",
    )

    def request(self, batch: str | None) -> JobRequest:
        """The JobRequest this item asks for, tagged with its batch."""
        fields = self.model_dump(exclude={"idempotency_key"})
        if batch is not None and batch_tag(batch) not in self.tags:
            fields["tags"] = [*self.tags, batch_tag(batch)]
        return JobRequest.model_validate(fields)


class BatchRequest(BaseModel):
    """Jobs to schedule together: every one gets an offset, in order, or none does."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    "jobs": [
                        {"deployment": "Docker", "framework": "FastAPI", "fn": "default_fn"},
                        {"deployment": "k8s", "framework": "Flask", "fn": "default_fn"},
                    ],
                    "batch": "nightly-2026-11-30",
                }
            ]
        },
    )

    jobs: list[BatchItem] = Field(min_length=1, max_length=MAX_BATCH_JOBS)
    batch: BatchId | None = Field(
        None, description="Tags every job `batch:<batch>`, to follow them together."
    )

    @model_validator(mode="after")
    def _fits(self) -> Self:
        seen: dict[str, int] = {}
        for index, item in enumerate(self.jobs):
            key = item.idempotency_key
            if key is not None:
                if key in seen:
                    raise ValueError(
                        f"jobs.{index}.idempotency_key repeats that of jobs.{seen[key]}: one key "
                        "names one job"
                    )
                seen[key] = index
            tagged = self.batch is not None and batch_tag(self.batch) not in item.tags
            if tagged and len(item.tags) >= MAX_TAGS:
                raise ValueError(
                    f"jobs.{index}.tags: {MAX_TAGS} tags already, no room for the batch's tag"
                )
        return self

    def requests(self) -> list[tuple[JobRequest, str | None]]:
        """Each job's request (with the batch's tag) and idempotency key, in order."""
        return [(item.request(self.batch), item.idempotency_key) for item in self.jobs]


class BatchAccepted(BaseModel):
    """The answer to a batch: each job's offset, in the order of the request."""

    offsets: list[Annotated[int, Field(ge=0, le=MAX_OFFSET)]] = Field(examples=[[7, 8]])
    tag: str | None = Field(
        None,
        description="The tag every job of the batch carries (`batch:<batch>`); null without one.",
        examples=["batch:nightly-2026-11-30"],
    )
