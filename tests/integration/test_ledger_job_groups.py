"""Jobs asked for at once are recorded together (one statement on PostgreSQL), and each caller
still gets what it would have alone: its offset, its earlier offset, or its own conflict."""

import asyncio

import asyncpg
import pytest

from contracts import IdempotencyConflictError, JobRequest, JobState
from ledger import Ledger
from ledger.postgres import PostgresLedger

REQUEST = JobRequest(deployment="group", framework="tests", fn="default_fn", tags=["a", "b"])
OTHER = JobRequest(deployment="group", framework="tests", fn="other_fn")


async def test_concurrent_calls_each_get_their_own_answer(ledger: Ledger):
    earlier, _ = await ledger.create_job(REQUEST, idempotency_key="used")
    answers = await asyncio.gather(
        ledger.create_job(REQUEST),
        ledger.create_job(REQUEST, idempotency_key="twice"),
        ledger.create_job(REQUEST, idempotency_key="used"),  # a repeat of an earlier job
        ledger.create_job(OTHER, idempotency_key="used"),  # another request, same key
        ledger.create_job(REQUEST, idempotency_key="twice"),  # the same key in one group
        ledger.create_job(OTHER, idempotency_key="twice"),
        ledger.create_job(OTHER, idempotency_key="fresh"),
        return_exceptions=True,
    )
    plain, twice, repeat, conflict, twice_again, twice_other, fresh = answers
    assert repeat == (earlier, False)
    assert isinstance(conflict, IdempotencyConflictError)
    assert conflict.offset == earlier
    assert isinstance(twice, tuple)
    assert twice_again == (twice[0], False)
    assert isinstance(twice_other, IdempotencyConflictError)
    assert twice_other.offset == twice[0]
    assert isinstance(plain, tuple)
    assert isinstance(fresh, tuple)
    new = [plain[0], twice[0], fresh[0]]
    assert (plain[1], twice[1], fresh[1]) == (True, True, True)
    assert new == sorted(new)  # offsets in the order they were asked for
    assert len({earlier, *new}) == 4
    for offset, request in zip(new, [REQUEST, REQUEST, OTHER], strict=True):
        record = await ledger.job(offset)
        assert (record.state, record.request) == (JobState.QUEUED, request)


async def test_concurrent_jobs_share_one_commit_on_postgres(postgres_url: str):
    ledger = PostgresLedger(postgres_url)
    await ledger.open()
    try:
        created = await asyncio.gather(*(ledger.create_job(REQUEST) for _ in range(50)))
    finally:
        await ledger.close()
    assert sorted(offset for offset, _ in created) == list(range(50))
    conn = await asyncpg.connect(postgres_url)
    try:
        writers = await conn.fetchval("SELECT count(DISTINCT xmin::text) FROM jobcast_jobs")
        tags = await conn.fetch("SELECT tag, count(*) FROM jobcast_job_tags GROUP BY tag")
    finally:
        await conn.close()
    assert writers == 1
    assert sorted((r["tag"], r["count"]) for r in tags) == [("a", 50), ("b", 50)]


async def test_a_job_the_database_refuses_fails_alone(postgres_url: str):
    ledger = PostgresLedger(postgres_url)
    await ledger.open()
    try:
        answers = await asyncio.gather(
            ledger.create_job(REQUEST),
            ledger.create_job(REQUEST, owner="\x00"),  # PostgreSQL text refuses NUL
            ledger.create_job(REQUEST, idempotency_key="k"),
            return_exceptions=True,
        )
        good, bad, keyed = answers
        assert isinstance(bad, asyncpg.exceptions.CharacterNotInRepertoireError)
        assert isinstance(good, tuple)
        assert isinstance(keyed, tuple)
        assert good[1]
        assert keyed[1]
        assert (await ledger.job(good[0])).request == REQUEST
        assert await ledger.create_job(REQUEST, idempotency_key="k") == (keyed[0], False)
    finally:
        await ledger.close()


async def test_two_gateways_racing_for_the_same_keys_agree(postgres_url: str):
    a, b = PostgresLedger(postgres_url), PostgresLedger(postgres_url)
    await a.open()
    await b.open()
    try:
        keys = [f"race-{i}" for i in range(30)]
        answers = await asyncio.gather(
            *(gateway.create_job(REQUEST, idempotency_key=k) for k in keys for gateway in (a, b))
        )
        for i in range(30):
            (first, made_first), (second, made_second) = answers[2 * i], answers[2 * i + 1]
            assert first == second
            assert made_first != made_second  # exactly one of them created it
        with pytest.raises(IdempotencyConflictError):
            await b.create_job(OTHER, idempotency_key=keys[0])
    finally:
        await a.close()
        await b.close()
