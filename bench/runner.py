"""Runs a Plan: starts the three systems, then each workload back to back, repeated."""

import platform
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from bench import workloads as w
from bench.memory import RssSampler
from bench.peer_systems import PEERS, Peer
from bench.plan import Plan
from bench.systems import FastapiExample, Jobcast, PikaBaseline


@dataclass
class Results:
    """Every figure of one bench run; lists hold one value per repetition."""

    machine: str = ""
    seconds: float = 0.0
    w1_amqp: dict[str, list[float]] = field(default_factory=lambda: {"jobcast": [], "pika": []})
    w1_http: dict[str, list[float]] = field(default_factory=lambda: {"jobcast": [], "example": []})
    w1_batches: list[float] = field(default_factory=list)
    w2: dict[str, list[w.Latency]] = field(default_factory=lambda: {"jobcast": [], "pika": []})
    w3: dict[str, float] = field(default_factory=dict)
    memory: w.Memory | None = None
    pika_rss: dict[str, int] = field(default_factory=dict)
    ledger_bytes_per_job: float = 0.0
    w1_feed: list[float] = field(default_factory=list)
    w2_example: list[w.Latency] = field(default_factory=list)
    w2_amqp: list[w.Latency] = field(default_factory=list)
    peer_w1: dict[str, list[float]] = field(default_factory=dict)
    peer_w2: dict[str, list[w.Latency]] = field(default_factory=dict)


def median(values: list[float]) -> float:
    return statistics.median(values)


def describe_machine() -> str:
    memory = psutil.virtual_memory().total / 2**30
    return (
        f"{psutil.cpu_count()} cores ({platform.processor() or platform.machine()}), "
        f"{memory:.0f} GiB RAM, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}; RabbitMQ on the same machine"
    )


async def run(plan: Plan, log: Callable[[str], None], keep_logs: bool = False) -> Results:
    """Start the three systems, run every workload, stop them; the logs go unless kept."""
    results = Results(machine=describe_machine())
    began = time.perf_counter()
    run_dir = Path(tempfile.mkdtemp(prefix="jobcast-bench-"))
    log(f"process logs in {run_dir}")
    started: list[Jobcast | PikaBaseline | FastapiExample] = []
    try:
        jobcast = Jobcast(run_dir)
        started.append(jobcast)
        jobcast.start_gateway()
        jobcast.start_worker()
        pika = PikaBaseline(run_dir)
        started.append(pika)
        example = FastapiExample(run_dir)
        started.append(example)
        await _phases(plan, results, jobcast, pika, example, log)
        await _peers(plan, results, jobcast, example, run_dir, log)
    except BaseException:
        keep_logs = True
        raise
    finally:
        for system in reversed(started):
            system.stop()
        if not keep_logs:
            shutil.rmtree(run_dir, ignore_errors=True)
    results.seconds = time.perf_counter() - began
    return results


async def _phases(
    plan: Plan,
    results: Results,
    jobcast: Jobcast,
    pika: PikaBaseline,
    example: FastapiExample,
    log: Callable[[str], None],
) -> None:
    pika_offset = 0
    # warm-up: connections, caches and the first fsyncs out of the way
    await w.w1_amqp_pika(pika, 50, pika_offset)
    pika_offset += 50
    await w.w1_amqp_jobcast(jobcast, 50)
    assert pika.worker is not None
    for rep in range(plan.repetitions):
        with RssSampler({"worker": pika.worker, "recorder": pika.recorder}) as rss:
            pika_rate = await w.w1_amqp_pika(pika, plan.w1_amqp_jobs, pika_offset)
        for name in ("worker", "recorder"):
            results.pika_rss[name] = max(results.pika_rss.get(name, 0), rss.peak(name))
        pika_offset += plan.w1_amqp_jobs
        jobcast_rate = await w.w1_amqp_jobcast(jobcast, plan.w1_amqp_jobs)
        results.w1_amqp["pika"].append(pika_rate)
        results.w1_amqp["jobcast"].append(jobcast_rate)
        log(f"W1 AMQP rep {rep + 1}: aio-pika {pika_rate:.0f}/s, jobcast {jobcast_rate:.0f}/s")
    for rep in range(plan.repetitions):
        example_rate = await w.w1_http(example.http_url, example.done_count, plan.w1_http_jobs)
        jobcast_rate = await w.w1_http(jobcast.http_url, jobcast.done_count, plan.w1_http_jobs)
        results.w1_http["example"].append(example_rate)
        results.w1_http["jobcast"].append(jobcast_rate)
        log(f"W1 HTTP rep {rep + 1}: example {example_rate:.0f}/s, jobcast {jobcast_rate:.0f}/s")
        batch_rate = await w.w1_http_batches(
            jobcast.http_url, jobcast.done_count, plan.w1_http_jobs
        )
        results.w1_batches.append(batch_rate)
        log(f"W1 HTTP in batches of {w.BATCH_SIZE} rep {rep + 1}: jobcast {batch_rate:.0f}/s")
    for rep in range(plan.repetitions):
        pika_latency = await w.w2_pika(pika, plan.w2_jobs, pika_offset)
        pika_offset += plan.w2_jobs
        jobcast_latency = await w.w2_jobcast(jobcast, plan.w2_jobs)
        results.w2["pika"].append(pika_latency)
        results.w2["jobcast"].append(jobcast_latency)
        log(f"W2 rep {rep + 1}: aio-pika {pika_latency}, jobcast {jobcast_latency}")
    jobs_before = jobcast.done_count()
    results.memory = await w.memory_jobcast(jobcast, plan.memory_jobs)
    log(f"memory: {results.memory}")
    results.ledger_bytes_per_job = jobcast.ledger_bytes() / jobcast.done_count()
    log(f"ledger: {results.ledger_bytes_per_job:.0f} bytes/job ({jobs_before} jobs before)")
    await _w3(plan, results, jobcast, pika, pika_offset, log)


async def _peers(
    plan: Plan,
    results: Results,
    jobcast: Jobcast,
    example: FastapiExample,
    run_dir: Path,
    log: Callable[[str], None],
) -> None:
    """jobcast's feed run, the example's W2, then each peer started in turn: W1 and W2."""
    jobcast.start_worker()  # back at step_seconds=0 after W3
    for rep in range(plan.peer_repetitions):
        rate = await w.w1_feed_jobcast(jobcast, plan.peer_w1_jobs)
        results.w1_feed.append(rate)
        amqp_w2 = await w.w2_amqp_jobcast(jobcast, plan.peer_w2_jobs)
        results.w2_amqp.append(amqp_w2)
        example_w2 = await w.w2_example(example, plan.peer_w2_jobs)
        results.w2_example.append(example_w2)
        log(f"W1 feed rep {rep + 1}: jobcast {rate:.0f}/s; W2 over AMQP jobcast {amqp_w2}")
        log(f"W2 FastAPI example {example_w2}")
    for spec in PEERS:
        peer = Peer(spec, run_dir)
        try:
            for rep in range(plan.peer_repetitions):
                w1 = await peer.run("w1", plan.peer_w1_jobs)
                if w1["results_seen"] < plan.peer_w1_jobs:
                    raise RuntimeError(f"{spec.key} W1 saw only {w1}")
                rate = float(w1["jobs"]) / float(w1["seconds"])  # type: ignore[arg-type]
                w2 = await peer.run("w2", plan.peer_w2_jobs)
                latency = w.latency(w2["first"], w2["done"])  # type: ignore[arg-type]
                results.peer_w1.setdefault(spec.key, []).append(rate)
                results.peer_w2.setdefault(spec.key, []).append(latency)
                log(f"{spec.key} rep {rep + 1}: W1 {rate:.0f}/s, W2 {latency}")
        finally:
            peer.stop()


async def _w3(
    plan: Plan,
    results: Results,
    jobcast: Jobcast,
    pika: PikaBaseline,
    pika_offset: int,
    log: Callable[[str], None],
) -> None:
    step = str(plan.step_seconds)
    jobcast.start_worker(step_seconds=step)
    assert jobcast.worker is not None
    # twice on one worker: the second run shows whether memory keeps growing once warm
    peaks, rates = [], []
    for _ in range(2):
        with RssSampler({"worker": jobcast.worker}) as rss:
            rates.append(await w.w3_jobcast(jobcast, plan.w3_jobs))
        peaks.append(rss.peak("worker"))
    results.w3["jobcast"] = median(rates)
    results.w3["worker_rss_growth"] = peaks[1] - peaks[0]
    results.w3["worker_rss_peak"] = peaks[1]
    jobcast.start_worker(step_seconds=step, worker_concurrency="1")
    results.w3["single_slot"] = await w.w3_jobcast(jobcast, plan.w3_single_slot_jobs)
    pika.start_worker(step_seconds=plan.step_seconds)
    results.w3["pika"] = await w.w1_amqp_pika(pika, plan.w3_jobs, pika_offset)
    log(f"W3: {results.w3}")
