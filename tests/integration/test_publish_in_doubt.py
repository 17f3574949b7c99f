"""A job whose publish is in doubt (issue 14): sent to RabbitMQ, its confirm lost with the node.
It may be on jobcast.jobs, so with an idempotency key it is not forgotten (that left a job
running under an offset its caller never got, its results refused): the release loop
publishes it again, and a retry with the key answers its offset. Without a key, or when the
job was certainly not sent, it is forgotten as before. On both ledgers."""

import pytest

from contracts import BrokerUnavailableError, Job, JobRequest, Reply, UnknownOffsetError
from contracts.batches import BatchRequest
from contracts.errors import PublishInDoubtError
from contracts.messages import JobState, ReplyKind
from producer.batches import BatchScheduler
from producer.release import Releaser
from producer.scheduler import Scheduler

REQUEST = JobRequest(deployment="d", framework="f", fn="default_fn")


class Publisher:
    """Fails every publish with `failure` until it is None; remembers what it published."""

    def __init__(self, failure: BaseException | None) -> None:
        self.failure = failure
        self.published: list[int] = []

    async def __call__(self, job: Job) -> None:
        if self.failure is not None:
            raise self.failure
        self.published.append(job.offset)


async def test_in_doubt_with_a_key_is_released_again_and_the_retry_gets_its_offset(ledger):
    publisher = Publisher(PublishInDoubtError("the node died before the confirm"))
    scheduler = Scheduler(ledger, publisher)
    with pytest.raises(PublishInDoubtError):
        await scheduler.schedule(REQUEST, idempotency_key="k-1")
    publisher.failure = None
    accepted = await scheduler.schedule(REQUEST, idempotency_key="k-1")  # the caller's retry
    record = await ledger.job(accepted.offset)
    assert record.state is JobState.SCHEDULED  # waiting for the release loop, due now
    assert publisher.published == []  # an idempotent repeat publishes nothing itself
    assert await Releaser(ledger, publisher).release_due() == 1
    assert publisher.published == [accepted.offset]
    assert (await ledger.job(accepted.offset)).state is JobState.QUEUED


async def test_in_doubt_without_a_key_is_forgotten(ledger):
    scheduler = Scheduler(ledger, Publisher(PublishInDoubtError("lost")))
    with pytest.raises(PublishInDoubtError):
        await scheduler.schedule(REQUEST)
    assert await ledger.claim_due(10) == []
    placed = await ledger.create_job(REQUEST)  # the forgotten offset is not reused
    with pytest.raises(UnknownOffsetError):
        await ledger.job(placed[0] - 1)


async def test_certainly_not_sent_is_forgotten_also_with_a_key(ledger):
    publisher = Publisher(BrokerUnavailableError("RabbitMQ is unreachable; reconnecting"))
    scheduler = Scheduler(ledger, publisher)
    with pytest.raises(BrokerUnavailableError):
        await scheduler.schedule(REQUEST, idempotency_key="k-2")
    assert await ledger.claim_due(10) == []
    publisher.failure = None
    accepted = await scheduler.schedule(REQUEST, idempotency_key="k-2")  # a new job this time
    assert publisher.published == [accepted.offset]


async def test_a_job_that_already_ran_is_not_released_again(ledger):
    offset, _ = await ledger.create_job(REQUEST, "k-3")
    await ledger.store_replies([Reply(offset=offset, seq=0, kind=ReplyKind.RESULT, value="r")])
    await ledger.release_again(offset)  # the in-doubt copy arrived and ran first
    assert (await ledger.job(offset)).state is JobState.RUNNING
    assert await ledger.claim_due(10) == []


class BatchPublisher(Publisher):
    """Fails the publish of the batch's `n`th new job with `failures[n]` (None: confirmed)."""

    def __init__(self, failures: list[BaseException | None]) -> None:
        super().__init__(None)
        self.failures = failures
        self.seen = 0

    async def __call__(self, job: Job) -> None:
        failure = self.failures[self.seen] if self.seen < len(self.failures) else None
        self.seen += 1
        if failure is not None:
            raise failure
        self.published.append(job.offset)


async def test_a_keyed_batch_in_doubt_keeps_what_is_or_may_be_queued_for_its_retry(ledger):
    batch = BatchRequest.model_validate(
        {"jobs": [{**REQUEST.model_dump(), "idempotency_key": f"b-{i}"} for i in range(3)]}
    )
    publisher = BatchPublisher([None, PublishInDoubtError("lost"), BrokerUnavailableError("down")])
    with pytest.raises(BrokerUnavailableError, match="no offset was handed out"):
        await BatchScheduler(ledger, publisher).schedule(batch)
    confirmed, in_doubt = publisher.published[0], publisher.published[0] + 1
    assert (await ledger.job(confirmed)).state is JobState.QUEUED  # on jobcast.jobs: it runs
    assert (await ledger.job(in_doubt)).state is JobState.SCHEDULED  # published again
    with pytest.raises(UnknownOffsetError):
        await ledger.job(in_doubt + 1)  # certainly not sent: forgotten
    retried = await BatchScheduler(ledger, Publisher(None)).schedule(batch)
    assert retried.offsets[:2] == [confirmed, in_doubt]  # the same keys, the same offsets
    assert retried.offsets[2] > in_doubt + 1  # a new job for the one forgotten


async def test_a_batch_without_keys_is_forgotten_whole_as_before(ledger):
    batch = BatchRequest.model_validate({"jobs": [REQUEST.model_dump()] * 2})
    publisher = BatchPublisher([None, PublishInDoubtError("lost")])
    with pytest.raises(BrokerUnavailableError):
        await BatchScheduler(ledger, publisher).schedule(batch)
    for offset in (publisher.published[0], publisher.published[0] + 1):
        with pytest.raises(UnknownOffsetError):
            await ledger.job(offset)
    assert await ledger.claim_due(10) == []
