"""The checker, in the manner of RabbitMQ's Jepsen suite: after a run, count what went wrong.

- **lost**: an offset handed out that never reached `done` or `failed` (or did with a step
  missing: its seqs are not 0, 1, 2, … ending in the final reply);
- **duplicated**: a step `(offset, seq)` stored twice (GET /jobs, GET /messages, the ledger);
- **unexpected**: results for an offset never handed out (ledger, topic, dead-lettered replies).

It also counts step *executions* from the test pipelines' log (tests/faults/pipelines.py):
a step that finished and ran again is **re-executed** ("resume, don't redo").
"""

import asyncio
import contextlib
import sqlite3
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
import httpx
import orjson

from contracts.headers import HEADER_REASON, HEADER_SOURCE
from contracts.topology import DEAD_QUEUE, LEDGER_QUEUE, REPLIES_EXCHANGE
from tests.support.waiting import eventually

OBSERVER_QUEUE = "faults.observer"
"""A durable queue of the test's own on `reply.*`: every reply published, across faults."""

FINAL = {"done", "failed"}


@dataclass(frozen=True)
class Taken:
    """One message taken from a queue."""

    message_id: str | None
    headers: dict[str, Any]
    body: bytes

    @property
    def reason(self) -> str | None:
        """Why jobcast dead-lettered it (x-jobcast-reason)."""
        return self.headers.get(HEADER_REASON)

    @property
    def source(self) -> str | None:
        """Where it came from (x-jobcast-source-queue)."""
        return self.headers.get(HEADER_SOURCE)


@dataclass
class Verdict:
    """What one run did; `assert_clean()` demands lost = duplicated = unexpected = 0."""

    handed_out: set[int]
    states: Counter[str]
    lost: list[int] = field(default_factory=list)
    duplicated: list[tuple[int, int]] = field(default_factory=list)
    unexpected: list[int] = field(default_factory=list)
    re_executed: list[tuple[int, int]] = field(default_factory=list)
    topic_copies: int = 0
    """Replies seen more than once on the topic: allowed (redelivery); subscribers dedupe."""
    topic_replies: int = 0
    records: dict[int, dict[str, Any]] = field(default_factory=dict)
    dead: list[tuple[dict[str, Any], bytes]] = field(default_factory=list)
    topic: list[dict[str, Any]] = field(default_factory=list)
    """Every reply seen on `reply.*` (copies included)."""
    """Everything that was in jobcast.dead: (headers, body)."""

    def assert_clean(self) -> None:
        summary = (
            f"handed out {len(self.handed_out)}, states {dict(self.states)}: "
            f"lost={self.lost} duplicated={self.duplicated} unexpected={self.unexpected}"
        )
        assert self.handed_out, "the run handed out no offset at all"
        assert (self.lost, self.duplicated, self.unexpected) == ([], [], []), summary


class Checker:
    """Schedules a batch through the gateway and judges the outcome."""

    def __init__(self, gateway_url: str, amqp_url: str, database_url: str, exec_log: Path) -> None:
        self.gateway_url = gateway_url
        self.amqp_url = amqp_url
        self.database_url = database_url
        self.exec_log = exec_log
        self.handed_out: set[int] = set()
        self.refused: Counter[int] = Counter()
        self.injected: set[bytes] = set()
        """Bodies the test itself published as an attacker would: refusing them is expected."""

    async def inject(
        self, body: bytes, *, exchange: str = "", routing_key: str, headers: dict[str, Any]
    ) -> None:
        """Publish `body` as a hostile or broken sender would (remembered as `injected`)."""
        self.injected.add(body)
        connection = await aio_pika.connect(self.amqp_url)
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            target = await channel.get_exchange(exchange) if exchange else channel.default_exchange
            message = aio_pika.Message(
                body, headers=headers, delivery_mode=aio_pika.DeliveryMode.PERSISTENT
            )
            await target.publish(message, routing_key=routing_key)

    async def observe_topic(self) -> None:
        """Bind the observer queue to every reply (call once the gateway declared the topology)."""
        connection = await aio_pika.connect(self.amqp_url)
        async with connection:
            channel = await connection.channel()
            queue = await channel.declare_queue(OBSERVER_QUEUE, durable=True)
            await queue.bind(REPLIES_EXCHANGE.name, routing_key="reply.*")

    async def schedule(self, jobs: int, fn: str = "counted", **headers: str) -> list[int]:
        """POST /schedule `jobs` times at once; returns the offsets handed out."""
        request = {"deployment": "faults", "framework": "jepsen", "fn": fn}
        async with httpx.AsyncClient(base_url=self.gateway_url, timeout=30) as http:
            answers = await asyncio.gather(
                *(http.post("/schedule", json=request, headers=headers) for _ in range(jobs))
            )
        offsets = []
        for answer in answers:
            if answer.status_code == 200:
                offsets.append(answer.json()["offset"])
            else:
                self.refused[answer.status_code] += 1
        self.handed_out.update(offsets)
        return offsets

    async def records(self, offsets: Iterable[int] | None = None) -> dict[int, dict[str, Any]]:
        """GET /jobs/{offset} for each offset (default: every one handed out)."""
        wanted = sorted(self.handed_out if offsets is None else offsets)
        async with httpx.AsyncClient(base_url=self.gateway_url, timeout=30) as http:
            answers = await asyncio.gather(*(http.get(f"/jobs/{o}") for o in wanted))
        found = {}
        for offset, answer in zip(wanted, answers, strict=True):
            assert answer.status_code in (200, 404), (offset, answer.status_code, answer.text)
            if answer.status_code == 200:
                found[offset] = answer.json()
        return found

    async def wait_until_final(self, timeout: float = 60.0) -> dict[int, dict[str, Any]]:
        """Wait (with a deadline) until every job handed out is done or failed."""

        async def unfinished() -> dict[int, str]:
            records = await self.records()
            return {
                o: records.get(o, {}).get("state", "missing")
                for o in self.handed_out
                if records.get(o, {}).get("state") not in FINAL
            }

        # NOTE: on timeout the verdict counts the unfinished ones as lost, with details
        with contextlib.suppress(AssertionError):
            await eventually(
                unfinished,
                until=lambda left: not left,
                timeout=timeout,
                every=0.25,
                what="every job done or failed",
            )
        return await self.records()

    async def verdict(self) -> Verdict:
        """Count lost, duplicated, unexpected and re-executed (after `wait_until_final`)."""
        records = await self.records()
        verdict = Verdict(
            set(self.handed_out), Counter(r["state"] for r in records.values()), records=records
        )
        verdict.lost = sorted(o for o in self.handed_out if not _complete(records.get(o)))
        duplicated: set[tuple[int, int]] = set()
        async with httpx.AsyncClient(base_url=self.gateway_url, timeout=30) as http:
            for offset, record in records.items():
                seqs = Counter(reply["seq"] for reply in record["replies"])
                duplicated.update((offset, s) for s, n in seqs.items() if n > 1)
                messages = (await http.get(f"/messages/{offset}")).json()
                if len(messages) != len(record["replies"]):
                    duplicated.add((offset, -1))
        ledger_jobs, ledger_pairs = await self._ledger_rows()
        duplicated.update(p for p, n in Counter(ledger_pairs).items() if n > 1)
        verdict.duplicated = sorted(duplicated)

        topic = [
            (headers, reply)
            for headers, reply in await self._drain(OBSERVER_QUEUE)
            if orjson.dumps(reply) not in self._injected_replies()
        ]
        verdict.topic = [reply for _, reply in topic]
        topic_pairs = Counter((m["offset"], m["seq"]) for _, m in topic)
        verdict.topic_replies = len(topic)
        verdict.topic_copies = sum(n - 1 for n in topic_pairs.values())
        verdict.dead = await self.dead_letters()
        refused_replies = [
            orjson.loads(taken.body)
            for taken in verdict.dead
            if taken.source == LEDGER_QUEUE.name and not self._was_injected(taken.body)
        ]
        unexpected = {o for o, _ in ledger_pairs} | set(ledger_jobs) | {o for o, _ in topic_pairs}
        unexpected -= self.handed_out
        unexpected |= {m.get("offset", -1) for m in refused_replies}
        verdict.unexpected = sorted(unexpected)

        finished = Counter((o, s) for o, s, _, _, event in self.executions() if event == "finish")
        verdict.re_executed = sorted(p for p, n in finished.items() if n > 1)
        return verdict

    def _was_injected(self, body: bytes) -> bool:
        """True for a body the test injected, or the start of one (dead letters are cut)."""
        return any(injected.startswith(body) for injected in self.injected)

    def _injected_replies(self) -> set[bytes]:
        """The injected bodies that are JSON, as orjson writes them (to compare parsed ones)."""
        found = set()
        for body in self.injected:
            with contextlib.suppress(orjson.JSONDecodeError):
                found.add(orjson.dumps(orjson.loads(body)))
        return found

    def executions(self) -> list[tuple[int, int, int, int, str]]:
        """(offset, seq, attempt, pid, event) for every step event the pipelines logged."""
        if not self.exec_log.exists():
            return []
        rows = []
        for line in self.exec_log.read_text().splitlines():
            offset, seq, attempt, pid, event, _ = line.split()
            rows.append((int(offset), int(seq), int(attempt), int(pid), event))
        return rows

    async def dead_letters(self) -> list[Taken]:
        """Take every message from jobcast.dead."""
        return await _drain_raw(self.amqp_url, DEAD_QUEUE.name)

    async def _drain(self, queue: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        return [
            (taken.headers, orjson.loads(taken.body))
            for taken in await _drain_raw(self.amqp_url, queue)
            if taken.body.startswith(b"{")
        ]

    async def _ledger_rows(self) -> tuple[list[int], list[tuple[int, int]]]:
        """Job ids and (offset, seq) of every stored reply, read straight from the database."""
        if self.database_url.startswith("sqlite:///"):
            path = self.database_url.removeprefix("sqlite:///")
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                jobs = [row[0] for row in conn.execute("SELECT id FROM jobs")]
                pairs = [(r[0], r[1]) for r in conn.execute("SELECT job_id, seq FROM replies")]
            finally:
                conn.close()
            return jobs, pairs
        pg = await asyncpg.connect(self.database_url)
        try:
            jobs = [r["id"] for r in await pg.fetch("SELECT id FROM jobcast_jobs")]
            pairs = [
                (r["job_id"], r["seq"])
                for r in await pg.fetch("SELECT job_id, seq FROM jobcast_replies")
            ]
        finally:
            await pg.close()
        return jobs, pairs


def _complete(record: dict[str, Any] | None) -> bool:
    """Done or failed, with every step on the way: seqs 0, 1, 2, … ending in the final reply."""
    if record is None or record["state"] not in FINAL or not record["replies"]:
        return False
    seqs = [reply["seq"] for reply in record["replies"]]
    return seqs == list(range(len(seqs))) and record["replies"][-1]["kind"] != "result"


async def _drain_raw(amqp_url: str, queue_name: str) -> list[Taken]:
    connection = await aio_pika.connect(amqp_url)
    taken: list[Taken] = []
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(queue_name, ensure=False)
        while (message := await queue.get(no_ack=True, fail=False)) is not None:
            taken.append(Taken(message.message_id, dict(message.headers or {}), message.body))
    return taken
