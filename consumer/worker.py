"""The worker's state: what it can run, how, and whether it is stopping."""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from consumer.cancels import Cancels
from consumer.pipelines import Registry
from consumer.replies import ReplyPublisher
from consumer.runner import RetryPolicy, StepObserver
from contracts import Reply
from contracts.messages import MAX_RESULT_BYTES
from contracts.signing import Signer
from messaging.publishing import AroundPublish, no_headers


@dataclass
class Worker:
    """Everything the job handler needs, built once per worker process."""

    registry: Registry
    signer: Signer
    """Verifies the jobs this worker takes and signs the replies it publishes."""
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    concurrency: int = 256
    publish_timeout: float = 5.0
    """How long a worker waits for RabbitMQ to confirm a reply before handing the job back."""
    replies: ReplyPublisher = field(init=False)
    """Started with the broker connection, before the first job is taken."""
    resume_timeout: float = 3.0
    max_deliveries: int = 8
    max_result_bytes: int = MAX_RESULT_BYTES
    """A step result larger than this (its JSON) fails the job with the reason."""
    """Fail a job delivered this often before (crash loop) instead of running it again."""
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    observe: StepObserver | None = None
    """Told every step attempt (metrics and tracing hook)."""
    around_publish: AroundPublish = no_headers
    """Wraps every reply published (a tracing span whose context the reply carries)."""
    published: Callable[[Reply], None] | None = None
    """Told every reply RabbitMQ confirmed (metrics hook)."""
    in_flight: int = 0
    cancels: Cancels = field(default_factory=Cancels)
    """The cancels this worker heard on jobcast.control (consumer/control.py feeds it)."""

    def __post_init__(self) -> None:
        self.replies = ReplyPublisher(
            self.signer, around=self.around_publish, published=self.published
        )
