"""`python -m bench.scaling [--quick|--smoke]`: how jobcast scales out on one PostgreSQL ledger.

- W3 (slow, I/O-bound steps) with 1, 2 and 4 worker processes, each with a fixed number of
  slots, so a worker's slots are the limit: the scaling factor per worker is rate(k) / (k x
  rate(1)); 1.0 is linear.
- W1 (zero-length steps, submitted over AMQP) with 1 and 2 gateways sharing the ledger and the
  queues: what a second gateway adds when the gateway is the bottleneck.

Each configuration is a fresh vhost and a fresh PostgreSQL database, run back to back in one
process, so the ratios compare like with like on a noisy machine."""

import shutil
import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.deployment import Deployment, Figures, log, scale_out_main
from harness.broker import Vhost, base_url

BASE_URL = base_url("BENCH_AMQP_URL")
RESULTS = Path(__file__).parent / "results" / "scaling.md"


@dataclass(frozen=True)
class Sizes:
    w3_jobs_per_worker: int
    w3_slots: int
    w1_jobs: int
    repetitions: int
    step_seconds: float = 0.1


SIZES = {
    "full": Sizes(w3_jobs_per_worker=200, w3_slots=16, w1_jobs=2000, repetitions=2),
    "quick": Sizes(w3_jobs_per_worker=64, w3_slots=16, w1_jobs=600, repetitions=1),
    "smoke": Sizes(w3_jobs_per_worker=8, w3_slots=4, w1_jobs=20, repetitions=1, step_seconds=0.01),
}


async def measure(
    run_dir: Path, admin_url: str, label: str, gateways: int, workers: int, jobs: int, **env: str
) -> float:
    """W1's jobs/s on a fresh vhost and database with `gateways` and `workers` processes (the
    workers with the extra `env` settings), after a warm-up."""
    vhost = Vhost(BASE_URL, f"bench-scale-{label}")
    try:
        async with Deployment(run_dir, admin_url, label) as deployment:
            for _ in range(gateways):
                await deployment.start_gateway(vhost.url)
            for _ in range(workers):
                await deployment.start_worker(vhost.url, **env)
            await deployment.throughput(vhost.url, min(jobs, 50))  # warm-up
            return await deployment.throughput(vhost.url, jobs)
    finally:
        vhost.delete()


async def run(sizes: Sizes, admin_url: str) -> Figures:
    run_dir = Path(tempfile.mkdtemp(prefix="jobcast-scaling-"))
    log(f"process logs in {run_dir}")
    figures: Figures = {}
    keep = False
    try:
        for rep in range(sizes.repetitions):
            for workers in (1, 2, 4):
                rate = await measure(
                    run_dir,
                    admin_url,
                    f"w3-{workers}",
                    1,
                    workers,
                    sizes.w3_jobs_per_worker * workers,
                    step_seconds=str(sizes.step_seconds),
                    worker_concurrency=str(sizes.w3_slots),
                )
                figures.setdefault(f"w3 {workers} workers", []).append(rate)
                log(f"rep {rep + 1}: W3 with {workers} workers: {rate:.1f} jobs/s")
            for gateways in (1, 2):
                rate = await measure(
                    run_dir, admin_url, f"w1-{gateways}gw", gateways, 2, sizes.w1_jobs
                )
                figures.setdefault(f"w1 {gateways} gateways", []).append(rate)
                log(f"rep {rep + 1}: W1 with {gateways} gateways: {rate:.0f} jobs/s")
    except BaseException:
        keep = True
        raise
    finally:
        if not keep:
            shutil.rmtree(run_dir, ignore_errors=True)
    return figures


def render(sizes: Sizes, figures: Figures) -> str:
    med = {name: statistics.median(values) for name, values in figures.items()}
    one = med["w3 1 workers"]
    lines = [
        f"W3: steps of {sizes.step_seconds * 1000:.0f} ms, {sizes.w3_slots} slots per worker, "
        f"{sizes.w3_jobs_per_worker} jobs per worker; W1: {sizes.w1_jobs} jobs over AMQP, "
        f"2 workers; PostgreSQL ledger; medians of {sizes.repetitions} run(s).",
        "",
        "| configuration | jobs/s | vs 1 | scaling per worker/gateway |",
        "|---|---:|---:|---:|",
    ]
    for workers in (1, 2, 4):
        rate = med[f"w3 {workers} workers"]
        lines.append(
            f"| W3, {workers} worker(s) | {rate:,.1f} | {rate / one:.2f}x | "
            f"{rate / one / workers:.2f} |"
        )
    one_gw = med["w1 1 gateways"]
    for gateways in (1, 2):
        rate = med[f"w1 {gateways} gateways"]
        lines.append(
            f"| W1, {gateways} gateway(s) | {rate:,.0f} | {rate / one_gw:.2f}x | "
            f"{rate / one_gw / gateways:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    scale_out_main("python -m bench.scaling", __doc__, SIZES, run, render, RESULTS)


if __name__ == "__main__":
    main()
