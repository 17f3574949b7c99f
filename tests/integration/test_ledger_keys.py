"""API keys and job owners in the ledger, on SQLite and PostgreSQL alike."""

import sqlite3

import pytest

from contracts import JobRequest
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
