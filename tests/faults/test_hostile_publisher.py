"""Scenarios: a hostile publisher, and numbers the ledger cannot hold, while jobs run.

Anyone who may publish on the broker tries to rewrite results (forged steps, an early `done`,
replies after `done`, another job's routing key, 5 MiB values, forged jobs reusing a finished
offset), and a broken worker sends offsets and seqs past the ledger's integers. Every one is
dead-lettered with its reason; no forged value is ever stored or shown; every real job ends
with all its steps; recording never stops and /ready stays green.
"""

import httpx
import orjson

from contracts.headers import HEADER_SIGNATURE
from contracts.signing import DEVELOPMENT_KEY, Signer
from contracts.topology import JOBS_QUEUE, LEDGER_QUEUE, REPLIES_EXCHANGE, reply_key
from tests.faults.conftest import Cluster
from tests.faults.pipelines import COUNTED_VALUES

FORGED = "FORGED"
WORKER = Signer(DEVELOPMENT_KEY)  # the cluster's processes run with the development key


def reply(offset: int, seq: int, kind: str = "result", value: object = FORGED) -> bytes:
    return orjson.dumps({"offset": offset, "seq": seq, "kind": kind, "value": value})


def job(offset: int) -> bytes:
    request = {"deployment": "faults", "framework": "jepsen", "fn": "counted"}
    return orjson.dumps({"offset": offset, "request": request})


async def _forge_replies(cluster: Cluster, running: int, finished: int, other: int) -> None:
    unsigned: dict[str, object] = {}
    guessed = {HEADER_SIGNATURE: Signer("a guessed key").sign(reply(running, 1))}
    for body, key, headers in [
        (reply(running, 1), reply_key(running), unsigned),  # replaces a step
        (reply(running, 1), reply_key(running), guessed),
        (reply(running, 1, "done"), reply_key(running), unsigned),  # ends it early
        (reply(finished, 4), reply_key(finished), unsigned),  # after its done
        (reply(finished, 9, value="x" * 5 * 1024 * 1024), reply_key(finished), unsigned),
        (reply(running, 2), reply_key(other), unsigned),  # into another job
    ]:
        await cluster.checker.inject(
            body, exchange=REPLIES_EXCHANGE.name, routing_key=key, headers=headers
        )
    # a real worker's signature cannot be moved to another job: the key says whose it is
    signed = reply(running, 2)
    await cluster.checker.inject(
        signed,
        exchange=REPLIES_EXCHANGE.name,
        routing_key=reply_key(other),
        headers={HEADER_SIGNATURE: WORKER.sign(signed)},
    )
    # a forged job reusing a finished offset, and one for an offset never handed out
    for offset in (finished, 10**6):
        await cluster.checker.inject(job(offset), routing_key=JOBS_QUEUE.name, headers=unsigned)


async def test_forged_replies_and_jobs_are_refused_and_every_real_job_ends_intact(
    cluster: Cluster,
):
    cluster.start_worker()
    [finished] = await cluster.checker.schedule(1)
    await cluster.checker.wait_until_final(timeout=30)
    running = await cluster.checker.schedule(6)

    await _forge_replies(cluster, running[0], finished, running[1])

    records = await cluster.checker.wait_until_final(timeout=60)
    verdict = await cluster.checker.verdict()
    verdict.assert_clean()
    for offset, record in records.items():
        assert [r["value"] for r in record["replies"]] == COUNTED_VALUES, offset
    async with httpx.AsyncClient(base_url=cluster.checker.gateway_url) as http:
        for offset in records:
            assert (await http.get(f"/messages/{offset}")).json() == COUNTED_VALUES
        assert (await http.get("/ready")).status_code == 200
    reasons = sorted(taken.reason or "" for taken in verdict.dead)
    assert sum(r.startswith("unsigned reply") for r in reasons) == 5, reasons
    assert sum(r.startswith("too large") for r in reasons) == 1, reasons
    assert sum(r.startswith("misrouted reply") for r in reasons) == 1, reasons
    assert sum(r.startswith("unsigned job") for r in reasons) == 2, reasons
    big = [t for t in verdict.dead if len(t.body) > 1024 * 1024]
    assert big == []  # jobcast.dead keeps a bounded copy, not 5 MiB


async def test_numbers_past_the_ledger_fail_alone_and_recording_goes_on(cluster: Cluster):
    cluster.start_worker()
    first = await cluster.checker.schedule(3)
    # a broken worker (it signs) sends what no ledger integer holds
    for body, key in [
        (reply(2**63, 0), "reply.9223372036854775808"),
        (reply(first[0], 2**31), reply_key(first[0])),
        (reply(first[0], 2**63, "done"), reply_key(first[0])),
    ]:
        await cluster.checker.inject(
            body,
            exchange=REPLIES_EXCHANGE.name,
            routing_key=key,
            headers={HEADER_SIGNATURE: WORKER.sign(body)},
        )
    await cluster.checker.inject(
        job(2**63), routing_key=JOBS_QUEUE.name, headers={HEADER_SIGNATURE: WORKER.sign(job(2**63))}
    )
    later = await cluster.checker.schedule(3)

    records = await cluster.checker.wait_until_final(timeout=60)
    verdict = await cluster.checker.verdict()
    verdict.assert_clean()
    assert set(records) == set(first + later)
    assert all(r["state"] == "done" for r in records.values())
    async with httpx.AsyncClient(base_url=cluster.checker.gateway_url) as http:
        assert (await http.get("/ready")).status_code == 200
    ledger_reasons = [t.reason or "" for t in verdict.dead if t.source == LEDGER_QUEUE.name]
    job_reasons = [t.reason or "" for t in verdict.dead if t.source == JOBS_QUEUE.name]
    assert len(ledger_reasons) == 3
    assert all(r.startswith("invalid reply") for r in ledger_reasons), ledger_reasons
    assert len(job_reasons) == 1
    assert job_reasons[0].startswith("invalid job: offset"), job_reasons
