"""API keys and job owners in the ledger, on SQLite and PostgreSQL alike."""

import sqlite3

import asyncpg
import pytest

from contracts import IdempotencyConflictError, JobRequest
from contracts.principals import KEY_PREFIX, digest, new_secret
from ledger import open_ledger
from ledger.keys import KeyExistsError

REQUEST = JobRequest(deployment="Docker", framework="FastAPI", fn="default_fn")


async def test_a_key_is_kept_by_its_digest_listed_and_revoked(ledger):
    secret = new_secret()
    assert secret.startswith(KEY_PREFIX)
    assert len(secret) == len(KEY_PREFIX) + 43
    added = await ledger.add_key("alice", digest(secret), admin=False)
    assert (added.name, added.admin, added.revoked_at) == ("alice", False, None)
    await ledger.add_key("root", digest(new_secret()), admin=True)

    found = await ledger.key_by_digest(digest(secret))
    assert found is not None
    assert (found.name, found.admin) == ("alice", False)
    assert await ledger.key_by_digest(digest(new_secret())) is None
    assert [(k.name, k.admin) for k in await ledger.keys()] == [("alice", False), ("root", True)]

    with pytest.raises(KeyExistsError):
        await ledger.add_key("alice", digest(new_secret()), admin=True)

    assert await ledger.revoke_key("alice") is True
    assert await ledger.revoke_key("alice") is False  # already revoked
    assert await ledger.revoke_key("nobody") is False
    revoked = await ledger.key_by_digest(digest(secret))
    assert revoked is not None
    assert revoked.revoked_at is not None


async def test_a_job_names_the_key_that_scheduled_it(ledger):
    mine, _ = await ledger.create_job(REQUEST, owner="alice")
    anyones, _ = await ledger.create_job(REQUEST)
    batch = await ledger.create_jobs([(REQUEST, None), (REQUEST, "k1")], [None, None], owner="bob")
    assert await ledger.job_owner(mine) == "alice"
    assert await ledger.job_owner(anyones) is None
    assert [await ledger.job_owner(offset) for offset, _ in batch] == ["bob", "bob"]
    assert await ledger.job_owner(10_000) is None  # never handed out: answered alike


async def test_a_ledger_older_than_keys_gets_the_table_and_the_owner_column(tmp_path):
    path = tmp_path / "old.db"
    old = open_ledger(f"sqlite:///{path}")
    await old.open()
    offset, _ = await old.create_job(REQUEST)
    await old.close()
    with sqlite3.connect(path) as conn:  # as a ledger written before API keys existed
        conn.execute("DROP INDEX jobs_by_owner")
        conn.execute("ALTER TABLE jobs DROP COLUMN owner")
        conn.execute("DROP TABLE api_keys")
    ledger = open_ledger(f"sqlite:///{path}")
    await ledger.open()
    try:
        assert await ledger.job_owner(offset) is None
        await ledger.add_key("alice", digest(new_secret()), admin=False)
        assert [k.name for k in await ledger.keys()] == ["alice"]
    finally:
        await ledger.close()


async def test_an_idempotency_key_is_one_per_owner(ledger):
    other = REQUEST.model_copy(update={"fn": "other"})
    alices, created = await ledger.create_job(REQUEST, "k", owner="alice")
    assert created
    # bob's "k" is a key of his own: a new job, not alice's offset (nothing learnt of hers)
    bobs = await ledger.create_job(REQUEST, "k", owner="bob")
    assert bobs[0] != alices
    assert bobs[1]
    assert await ledger.job_owner(bobs[0]) == "bob"
    # another request under a key another owner used is no conflict either
    carols, created = await ledger.create_job(other, "k", owner="carol")
    assert created
    assert carols not in (alices, bobs[0])
    # each owner's repeat is its own job, and a conflict names only its own offset and key
    assert await ledger.create_job(REQUEST, "k", owner="alice") == (alices, False)
    assert await ledger.create_job(REQUEST, "k", owner="bob") == (bobs[0], False)
    with pytest.raises(IdempotencyConflictError) as conflict:
        await ledger.create_job(other, "k", owner="alice")
    assert (conflict.value.key, conflict.value.offset) == ("k", alices)
    assert (
        str(conflict.value) == f"idempotency key 'k' was used for another request (offset {alices})"
    )
    # with auth off (no owner) a key is the one key of everyone, as before
    anyones, created = await ledger.create_job(REQUEST, "k")
    assert created
    assert await ledger.create_job(REQUEST, "k") == (anyones, False)
    assert len({alices, bobs[0], carols, anyones}) == 4


async def test_a_batch_s_idempotency_keys_are_its_owners(ledger):
    alices, _ = await ledger.create_job(REQUEST, "k", owner="alice")
    [(daves, created)] = await ledger.create_jobs([(REQUEST, "k")], [None], owner="dave")
    assert created
    assert daves != alices
    assert await ledger.create_jobs([(REQUEST, "k")], [None], owner="alice") == [(alices, False)]
    other = REQUEST.model_copy(update={"fn": "other"})
    with pytest.raises(IdempotencyConflictError) as conflict:
        await ledger.create_jobs([(REQUEST, None), (other, "k")], [None, None], owner="dave")
    assert (conflict.value.key, conflict.value.offset) == ("k", daves)


async def test_owned_idempotency_keys_of_an_older_ledger_are_scoped_in_place(database_url):
    first = open_ledger(database_url)
    await first.open()
    try:
        alices, _ = await first.create_job(REQUEST, "k", owner="alice")
        anyones, _ = await first.create_job(REQUEST, "free")
    finally:
        await first.close()
    await _as_before_scoped_keys(database_url)
    ledger = open_ledger(database_url)
    await ledger.open()
    try:
        # the row is kept and is alice's key still; bob's "k" is his own
        assert await ledger.create_job(REQUEST, "k", owner="alice") == (alices, False)
        assert (await ledger.create_job(REQUEST, "k", owner="bob"))[1] is True
        assert await ledger.create_job(REQUEST, "free") == (anyones, False)
    finally:
        await ledger.close()
    again = open_ledger(database_url)  # opened again: nothing prefixed twice
    await again.open()
    try:
        assert await again.create_job(REQUEST, "k", owner="alice") == (alices, False)
    finally:
        await again.close()


async def _as_before_scoped_keys(database_url: str) -> None:
    """Rewrite the ledger's keys as a ledger written before keys were scoped stored them."""
    if database_url.startswith("sqlite"):
        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as conn:
            conn.execute(
                "UPDATE jobs SET idempotency_key = substr(idempotency_key,"
                " instr(idempotency_key, char(31)) + 1)"
            )
            conn.execute("PRAGMA user_version = 0")
        return
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "UPDATE jobcast_jobs SET idempotency_key = split_part(idempotency_key, chr(31), 2)"
            " WHERE strpos(idempotency_key, chr(31)) > 0"
        )
        await conn.execute("DROP TABLE jobcast_migrations")
    finally:
        await conn.close()
