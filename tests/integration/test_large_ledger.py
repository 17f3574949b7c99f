"""GET /jobs stays fast on a ledger of a million jobs, on SQLite and on PostgreSQL: each filter
is read from an index (the query plan says so) and a page comes back well within a second.

The ledger is generated with SQL inside the database (a recursive CTE, generate_series), so
building it takes seconds, not the hours a million POSTs would."""

import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from contracts import JobState
from contracts.listing import JobFilter
from ledger import open_ledger
from ledger.listing import list_query, utc_text

JOBS = 1_000_000
PAGE_SECONDS = 1.0
"""Generous: a page takes milliseconds when its index is used, seconds when it is not."""

START = datetime(2026, 1, 1, tzinfo=UTC)
"""Job i was created at START + i seconds."""

# every 50th job failed, the last 100 run, every 1000th is another pipeline; every 10th job
# is tagged "eu", every 10000th also "rare"
SQLITE_FILL = f"""
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {JOBS - 1})
INSERT INTO jobs (id, request, fn, state, created_at, updated_at, next_seq, final_seq, final_kind)
SELECT i,
    '{{"deployment":"D","framework":"F","fn":"' || (CASE WHEN i % 1000 = 0 THEN 'rare_fn'
        ELSE 'default_fn' END) || '"' || (CASE WHEN i % 10000 = 0 THEN ',"tags":["eu","rare"]'
        WHEN i % 10 = 0 THEN ',"tags":["eu"]' ELSE '' END) || '}}',
    CASE WHEN i % 1000 = 0 THEN 'rare_fn' ELSE 'default_fn' END,
    CASE WHEN i >= {JOBS - 100} THEN 'running' WHEN i % 50 = 0 THEN 'failed' ELSE 'done' END,
    strftime('%Y-%m-%dT%H:%M:%S+00:00', '2026-01-01', '+' || i || ' seconds'),
    strftime('%Y-%m-%dT%H:%M:%S+00:00', '2026-01-01', '+' || (i + 3) || ' seconds'),
    4, CASE WHEN i >= {JOBS - 100} THEN NULL ELSE 3 END,
    CASE WHEN i >= {JOBS - 100} THEN NULL WHEN i % 50 = 0 THEN 'error' ELSE 'done' END
FROM n;
INSERT INTO job_tags (tag, job_id) SELECT 'eu', id FROM jobs WHERE id % 10 = 0;
INSERT INTO job_tags (tag, job_id) SELECT 'rare', id FROM jobs WHERE id % 10000 = 0;
UPDATE offsets SET next = {JOBS};
ANALYZE;
"""

POSTGRES_FILL = f"""
INSERT INTO jobcast_jobs (id, request, fn, state, created_at, updated_at, next_seq, final_seq,
    final_kind)
SELECT i,
    '{{"deployment":"D","framework":"F","fn":"' || (CASE WHEN i % 1000 = 0 THEN 'rare_fn'
        ELSE 'default_fn' END) || '"' || (CASE WHEN i % 10000 = 0 THEN ',"tags":["eu","rare"]'
        WHEN i % 10 = 0 THEN ',"tags":["eu"]' ELSE '' END) || '}}',
    CASE WHEN i % 1000 = 0 THEN 'rare_fn' ELSE 'default_fn' END,
    CASE WHEN i >= {JOBS - 100} THEN 'running' WHEN i % 50 = 0 THEN 'failed' ELSE 'done' END,
    timestamptz '2026-01-01 00:00:00+00' + i * interval '1 second',
    timestamptz '2026-01-01 00:00:00+00' + (i + 3) * interval '1 second',
    4, CASE WHEN i >= {JOBS - 100} THEN NULL ELSE 3 END,
    CASE WHEN i >= {JOBS - 100} THEN NULL WHEN i % 50 = 0 THEN 'error' ELSE 'done' END
FROM generate_series(0, {JOBS - 1}) AS i;
INSERT INTO jobcast_job_tags (tag, job_id) SELECT 'eu', id FROM jobcast_jobs WHERE id % 10 = 0;
INSERT INTO jobcast_job_tags (tag, job_id)
    SELECT 'rare', id FROM jobcast_jobs WHERE id % 10000 = 0;
SELECT setval('jobcast_offsets', {JOBS});
ANALYZE;
"""

MIDDLE = START + timedelta(seconds=JOBS // 2)

PAGES: dict[str, tuple[JobFilter, int | None, Callable[[list[int]], bool]]] = {
    "newest": (JobFilter(), None, lambda o: o == list(range(JOBS - 1, JOBS - 51, -1))),
    "deep page": (JobFilter(), JOBS // 2, lambda o: o[0] == JOBS // 2 - 1),
    "state=failed": (JobFilter(state=JobState.FAILED), None, lambda o: o[0] == 999_850),
    "state=running": (JobFilter(state=JobState.RUNNING), None, lambda o: o[-1] == JOBS - 50),
    "fn=rare_fn": (JobFilter(fn="rare_fn"), None, lambda o: o[0] == 999_000),
    "tag=eu": (JobFilter(tag="eu"), None, lambda o: o[0] == 999_990),
    "tag=rare": (JobFilter(tag="rare"), None, lambda o: o[0] == 990_000),
    "tag=eu deep": (JobFilter(tag="eu"), 100_000, lambda o: o[0] == 99_990),
    "state=failed tag=eu": (
        JobFilter(state=JobState.FAILED, tag="eu"),
        None,
        lambda o: o[0] == 999_850,
    ),
    "an hour": (
        JobFilter(since=MIDDLE, until=MIDDLE + timedelta(hours=1)),
        None,
        lambda o: o[0] == JOBS // 2 + 3599,
    ),
    "since the middle": (JobFilter(since=MIDDLE), None, lambda o: o[0] == JOBS - 1),
    "until the middle": (JobFilter(until=MIDDLE), None, lambda o: o[0] == JOBS // 2 - 1),
}


SQLITE_PLANS = {
    "newest": "SCAN j",  # the primary key, backwards, stopping after 50
    "deep page": "SEARCH j USING INTEGER PRIMARY KEY (rowid<?)",
    "state=failed": "SEARCH j USING INDEX jobs_by_state (state=?)",
    "state=running": "SEARCH j USING INDEX jobs_by_state (state=?)",
    "fn=rare_fn": "SEARCH j USING INDEX jobs_by_fn (fn=?)",
    "tag=eu": "SEARCH t USING PRIMARY KEY (tag=?)",
    "tag=rare": "SEARCH t USING PRIMARY KEY (tag=?)",
    "tag=eu deep": "SEARCH t USING PRIMARY KEY (tag=? AND job_id<?)",
    "state=failed tag=eu": "SEARCH t USING PRIMARY KEY (tag=?)",
    "an hour": "SEARCH j USING INDEX jobs_by_created (created_at>? AND created_at<?)",
    "since the middle": "SCAN j",
    "until the middle": "SCAN j",
}
SORTED_RANGES = {"an hour"}
"""A bounded time range is read from the created_at index and its jobs sorted by offset."""


async def timed_pages(ledger: Any) -> dict[str, float]:
    """Each page's time, checking what it holds."""
    times = {}
    for name, (found, before, holds) in PAGES.items():
        began = time.perf_counter()
        rows = await ledger.list_jobs(found, before, 50)
        times[name] = time.perf_counter() - began
        offsets = [row.offset for row in rows]
        assert len(offsets) == 50, name
        assert holds(offsets), (name, offsets[:3])
    return times


def report(backend: str, fill: float, times: dict[str, float]) -> None:
    slowest = max(times, key=times.__getitem__)
    print(
        f"\n{backend}: {JOBS} jobs generated in {fill:.1f}s; a page of 50: "
        + ", ".join(f"{name} {seconds * 1000:.1f} ms" for name, seconds in times.items())
        + f"; slowest {slowest}"
    )
    for name, seconds in times.items():
        assert seconds < PAGE_SECONDS, (name, seconds)


async def test_a_page_of_a_million_jobs_on_sqlite_is_read_from_an_index(tmp_path):
    path = tmp_path / "large.db"
    ledger = open_ledger(f"sqlite:///{path}")
    await ledger.open()
    began = time.perf_counter()
    with sqlite3.connect(path) as conn:
        conn.executescript(SQLITE_FILL)
    fill = time.perf_counter() - began
    try:
        times = await timed_pages(ledger)
        with sqlite3.connect(path) as conn:
            for name, (found, before, _) in PAGES.items():
                sql, params = list_query(
                    lambda n: f"?{n}",
                    {"jobs": "jobs", "replies": "replies", "tags": "job_tags"},
                    found,
                    before,
                    50,
                    utc_text,
                )
                plan = " | ".join(
                    row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params)
                )
                assert SQLITE_PLANS[name] in plan, (name, plan)
                # a sort of every matching job is what a missing index looks like
                if name not in SORTED_RANGES:
                    assert "TEMP B-TREE" not in plan, (name, plan)
    finally:
        await ledger.close()
    report("SQLite", fill, times)


async def test_a_page_of_a_million_jobs_on_postgresql_is_read_from_an_index(postgres_url):
    ledger = open_ledger(postgres_url)
    await ledger.open()
    conn = await asyncpg.connect(postgres_url)
    try:
        began = time.perf_counter()
        await conn.execute(POSTGRES_FILL)
        fill = time.perf_counter() - began
        times = await timed_pages(ledger)
        for name, (found, before, _) in PAGES.items():
            sql, params = list_query(
                lambda n: f"${n}",
                {"jobs": "jobcast_jobs", "replies": "jobcast_replies", "tags": "jobcast_job_tags"},
                found,
                before,
                50,
                lambda moment: moment,
            )
            plan = "\n".join(row[0] for row in await conn.fetch(f"EXPLAIN {sql}", *params))
            assert "Seq Scan" not in plan, (name, plan)
            assert "Index" in plan, (name, plan)
    finally:
        await conn.close()
        await ledger.close()
    report("PostgreSQL", fill, times)
