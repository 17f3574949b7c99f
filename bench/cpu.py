"""`python -m bench.cpu [--jobs N]`: CPU per job of every process, jobcast and the aio-pika
baseline, over one W1-over-AMQP run each: where the time goes, in milliseconds per job.

User + system CPU seconds of each process (RabbitMQ's `beam.smp` and this bench process
included) over the jobs finished. On a CPU-bound machine the W1 ratio follows these totals.
"""

import argparse
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

import psutil
import uvloop

from bench import workloads as w
from bench.systems import Jobcast, PikaBaseline
from harness.processes import Process


def _cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def _ps(process: Process) -> psutil.Process:
    return psutil.Process(process.pid)


def _broker() -> psutil.Process | None:
    for process in psutil.process_iter(["name"]):
        if "beam" in (process.info["name"] or ""):
            return process
    return None


async def _per_job(
    processes: dict[str, psutil.Process], run: Callable[[int], Awaitable[float]], jobs: int
) -> tuple[float, dict[str, float]]:
    """(jobs/s, CPU ms per job by process) of `run(jobs)`, after a 50-job warm-up."""
    await run(50)
    broker = _broker()
    if broker is not None:
        processes = {**processes, "RabbitMQ (beam.smp)": broker}
    processes = {**processes, "client (this process)": psutil.Process()}
    before = {name: _cpu_seconds(p) for name, p in processes.items()}
    rate = await run(jobs)
    return rate, {
        name: 1000 * (_cpu_seconds(p) - before[name]) / jobs for name, p in processes.items()
    }


async def measure(jobs: int) -> str:
    """Both systems, one after the other; the table as Markdown."""
    run_dir = Path(tempfile.mkdtemp(prefix="jobcast-bench-cpu-"))
    rows: dict[str, tuple[float, dict[str, float]]] = {}
    try:
        jobcast = Jobcast(run_dir)
        try:
            jobcast.start_gateway()
            jobcast.start_worker()
            assert jobcast.gateway is not None
            assert jobcast.worker is not None
            rows["jobcast"] = await _per_job(
                {"gateway": _ps(jobcast.gateway), "worker": _ps(jobcast.worker)},
                lambda n: w.w1_amqp_jobcast(jobcast, n),
                jobs,
            )
        finally:
            jobcast.stop()
        pika = PikaBaseline(run_dir)
        try:
            assert pika.worker is not None
            offset = [0]

            async def run_pika(n: int) -> float:
                rate = await w.w1_amqp_pika(pika, n, offset[0])
                offset[0] += n
                return rate

            rows["aio-pika"] = await _per_job(
                {"recorder": _ps(pika.recorder), "worker": _ps(pika.worker)}, run_pika, jobs
            )
        finally:
            pika.stop()
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    return render(jobs, rows)


def render(jobs: int, rows: dict[str, tuple[float, dict[str, float]]]) -> str:
    lines = [
        f"CPU per job, W1 over AMQP, {jobs} jobs each (user + system CPU over jobs finished):",
        "",
        "| system | jobs/s | process | ms per job |",
        "|---|---:|---|---:|",
    ]
    for system, (rate, per_process) in rows.items():
        for name, ms in per_process.items():
            lines.append(f"| {system} | {rate:.0f} | {name} | {ms:.2f} |")
        lines.append(f"| {system} | {rate:.0f} | **total** | **{sum(per_process.values()):.2f}** |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cpu", description=__doc__)
    parser.add_argument("--jobs", type=int, default=3000, help="jobs per system (default 3000)")
    args = parser.parse_args()
    print(uvloop.run(measure(args.jobs)))


if __name__ == "__main__":
    main()
