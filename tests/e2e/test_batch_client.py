"""JobcastClient.schedule_many against `jobcast serve`, over HTTP and over AMQP."""

import pytest

from client import JobcastClient, ScheduleRejectedError
from contracts import JobRequest
from tests.support.waiting import eventually

REQUESTS = [JobRequest(deployment=f"d{i}", framework="FastAPI", fn="default_fn") for i in range(3)]


@pytest.mark.parametrize("over", ["http", "amqp"])
async def test_schedule_many_answers_offsets_in_order_and_a_retry_the_same(
    spawn, jobcast_env, over
):
    server = spawn("serve", jobcast_env)
    server.wait_http()
    amqp_url = jobcast_env["JOBCAST_AMQP_URL"] if over == "amqp" else None
    keys: list[str | None] = ["a", "b", None]
    async with JobcastClient(server.url, amqp_url=amqp_url) as jobs:
        offsets = await jobs.schedule_many(REQUESTS, batch="b1", idempotency_keys=keys)
        assert offsets == [0, 1, 2]
        again = await jobs.schedule_many(REQUESTS[:2], batch="b1", idempotency_keys=keys[:2])
        assert again == [0, 1]
        for offset, request in zip(offsets, REQUESTS, strict=True):
            record = await eventually(
                lambda o=offset: jobs.status(o), until=lambda r: r.state == "done", what="done"
            )
            assert record.request.deployment == request.deployment
            assert record.request.tags == ["batch:b1"]
        with pytest.raises(ScheduleRejectedError):
            await jobs.schedule_many(REQUESTS[1:2], idempotency_keys=["a"])  # "a" is another job
