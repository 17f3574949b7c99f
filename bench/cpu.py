"""`python -m bench.cpu [--jobs N]`: what one job costs in every system, over one W1 run each
(jobcast and the aio-pika baseline over AMQP from this process, every peer with its own client):

- CPU per job of every process: user + system CPU seconds over the jobs finished (psutil; a
  process with children, such as Celery's prefork pool, counts them all; RabbitMQ's `beam.smp`
  and the client included);
- fsyncs per job: fsync + fdatasync calls, counted in the kernel by `perf stat` on the syscall
  tracepoints (bench/fsyncs.py), where perf may read them;
- broker operations per job: every AMQP connection of the system goes through bench/wire.py's
  relay, which counts frames and basic.publish / deliver / ack / get by direction.

The relay adds a hop, so jobs/s here are below the main table's; it runs in a process of its own
that no row counts. On a CPU-bound machine W1 follows the CPU totals.
"""

import argparse
import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import psutil
import uvloop

from bench import fsyncs
from bench import workloads as w
from bench.peer_systems import PEERS, Peer
from bench.systems import BASE_URL, Jobcast, PikaBaseline
from harness.processes import Process

WARM_UP_JOBS = 50
BROKER = "RabbitMQ (beam.smp)"
CLIENT = "client"

Run = Callable[[int], Awaitable[tuple[float, float | None]]]
"""Runs W1 with n jobs: (jobs/s, the client's CPU seconds if it is not this process)."""


@dataclass
class Cost:
    rate: float = 0.0
    cpu_ms: dict[str, float] = field(default_factory=dict)
    fsyncs: dict[str, float] = field(default_factory=dict)
    ops: dict[str, float] = field(default_factory=dict)


class Relay:
    """bench/wire.py in a process of its own, in front of the broker."""

    def __init__(self) -> None:
        upstream = urlsplit(BASE_URL).port or 5672
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.wire", str(upstream)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())

    def counts(self) -> dict[str, int]:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        return dict(json.loads(self.proc.stdout.readline()))

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def _cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            total += times.user + times.system + times.children_user + times.children_system
    return total


def broker_process() -> psutil.Process | None:
    """The `beam.smp` listening on the bench broker's AMQP port (other nodes, such as the fault
    tests' throwaway ones, may run beside it)."""
    port = urlsplit(BASE_URL).port or 5672
    for process in psutil.process_iter(["name"]):
        if "beam" not in (process.info["name"] or ""):
            continue
        with contextlib.suppress(psutil.Error):
            listening = process.net_connections("tcp")
            if any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in listening):
                return process
    return None


def _tree(process: Process) -> list[psutil.Process]:
    main = psutil.Process(process.pid)
    return [main, *main.children(recursive=True)]


async def _cost(
    processes: Callable[[], dict[str, list[psutil.Process]]],
    run: Run,
    jobs: int,
    relay: Relay,
    run_dir: Path,
) -> Cost:
    """The cost per job of `run(jobs)`, after a warm-up (once the processes all exist)."""
    await run(min(WARM_UP_JOBS, jobs))
    groups = processes()
    counted = dict(groups)  # fsyncs: the system's own processes and the broker
    broker = broker_process()
    if broker is not None:
        groups[BROKER] = counted[BROKER] = [broker]
    in_process = psutil.Process()
    before = {name: _cpu_seconds(group) for name, group in groups.items()}
    client_before = _cpu_seconds([in_process])
    ops_before = relay.counts()
    pids = {name: [p.pid for p in group] for name, group in counted.items() if group}
    counter = fsyncs.FsyncCounter(pids, run_dir) if fsyncs.available() else None
    with counter or contextlib.nullcontext():
        rate, client_cpu = await run(jobs)
    ops_after = relay.counts()
    cost = Cost(rate)
    for name, group in groups.items():
        cost.cpu_ms[name] = 1000 * (_cpu_seconds(group) - before[name]) / jobs
    if client_cpu is None:
        client_cpu = _cpu_seconds([in_process]) - client_before
    cost.cpu_ms[CLIENT] = 1000 * client_cpu / jobs
    if counter is not None:
        cost.fsyncs = {name: count / jobs for name, count in counter.counts.items()}
    for key, value in ops_after.items():
        cost.ops[key] = (value - ops_before.get(key, 0)) / jobs
    return cost


async def _jobcast(jobs: int, relay: Relay, run_dir: Path) -> Cost:
    jobcast = Jobcast(run_dir, relay_port=relay.port)
    try:
        jobcast.start_gateway()
        jobcast.start_worker()
        assert jobcast.gateway is not None
        assert jobcast.worker is not None
        gateway, worker = jobcast.gateway, jobcast.worker

        async def run(n: int) -> tuple[float, float | None]:
            return await w.w1_amqp_jobcast(jobcast, n), None

        return await _cost(
            lambda: {"gateway": _tree(gateway), "worker": _tree(worker)}, run, jobs, relay, run_dir
        )
    finally:
        jobcast.stop()


async def _pika(jobs: int, relay: Relay, run_dir: Path) -> Cost:
    pika = PikaBaseline(run_dir, relay_port=relay.port)
    offset = [0]
    try:
        assert pika.worker is not None
        worker = pika.worker

        async def run(n: int) -> tuple[float, float | None]:
            rate = await w.w1_amqp_pika(pika, n, offset[0])
            offset[0] += n
            return rate, None

        return await _cost(
            lambda: {"recorder": _tree(pika.recorder), "worker": _tree(worker)},
            run,
            jobs,
            relay,
            run_dir,
        )
    finally:
        pika.stop()


async def _peer(key: str, jobs: int, relay: Relay, run_dir: Path) -> Cost:
    spec = next(spec for spec in PEERS if spec.key == key)
    peer = Peer(spec, run_dir, relay_port=relay.port)
    try:

        async def run(n: int) -> tuple[float, float | None]:
            out = await peer.run("w1", n)
            seconds, cpu = float(out["seconds"]), float(out["client_cpu_seconds"])  # type: ignore[arg-type]
            return n / seconds, cpu

        return await _cost(peer.processes, run, jobs, relay, run_dir)
    finally:
        peer.stop()


async def measure(jobs: int, systems: list[str]) -> str:
    """Every system asked for, one after the other; the tables as Markdown."""
    run_dir = Path(tempfile.mkdtemp(prefix="jobcast-bench-cpu-"))
    relay = Relay()
    rows: dict[str, Cost] = {}
    try:
        for system in systems:
            if system == "jobcast":
                rows[system] = await _jobcast(jobs, relay, run_dir)
            elif system == "aio-pika":
                rows[system] = await _pika(jobs, relay, run_dir)
            else:
                rows[system] = await _peer(system, jobs, relay, run_dir)
            cost = rows[system]
            print(
                f"{system}: {cost.rate:.0f} jobs/s, {sum(cost.cpu_ms.values()):.2f} ms CPU/job",
                file=sys.stderr,
                flush=True,
            )
    finally:
        relay.stop()
        shutil.rmtree(run_dir, ignore_errors=True)
    return render(jobs, rows)


OPS = (
    ("client publish", "publishes"),
    ("broker deliver", "deliveries"),
    ("client ack", "acks by consumers"),
    ("broker ack", "confirms"),
    ("client get", "basic.get"),
)


def render(jobs: int, rows: dict[str, Cost]) -> str:
    counted = fsyncs.available()
    lines = [
        f"Cost per job, W1 over AMQP, {jobs} jobs each (CPU: user + system over the jobs "
        "finished; fsyncs: fsync + fdatasync, perf stat"
        + ("" if counted else ", not countable here")
        + f"; {BROKER} is the machine's shared broker, whose fsyncs include other vhosts'):",
        "",
        "| system | jobs/s | process | CPU ms per job | fsyncs per job |",
        "|---|---:|---|---:|---:|",
    ]
    for system, cost in rows.items():
        for name, ms in cost.cpu_ms.items():
            syncs = f"{cost.fsyncs[name]:.2f}" if name in cost.fsyncs else ""
            lines.append(f"| {system} | {cost.rate:.0f} | {name} | {ms:.2f} | {syncs} |")
        total_syncs = sum(v for k, v in cost.fsyncs.items() if k != BROKER)
        lines.append(
            f"| {system} | {cost.rate:.0f} | **total** | **{sum(cost.cpu_ms.values()):.2f}** "
            f"| {total_syncs:.2f} (without the broker) |"
        )
    lines += [
        "",
        "Broker operations per job (AMQP methods through the relay, every connection of the "
        "system and its client; a multiple-ack is one ack):",
        "",
        "| system | " + " | ".join(label for _, label in OPS) + " | frames, both ways |",
        "|---|" + "---:|" * (len(OPS) + 1),
    ]
    for system, cost in rows.items():
        frames = cost.ops.get("client frames", 0) + cost.ops.get("broker frames", 0)
        cells = " | ".join(f"{cost.ops.get(key, 0):.2f}" for key, _ in OPS)
        lines.append(f"| {system} | {cells} | {frames:.1f} |")
    lines += ["", "Where they go, per job (exchange and routing key, offsets and ids as `*`):", ""]
    for system, cost in rows.items():
        routes = sorted((k, v) for k, v in cost.ops.items() if " to " in k and v >= 0.01)
        lines.append(f"- {system}: " + "; ".join(f"{k} {v:.2f}" for k, v in routes))
    return "\n".join(lines)


SYSTEMS = ["jobcast", "aio-pika", *(spec.key for spec in PEERS)]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cpu", description=__doc__)
    parser.add_argument("--jobs", type=int, default=3000, help="jobs per system (default 3000)")
    parser.add_argument(
        "--systems", nargs="+", choices=SYSTEMS, default=SYSTEMS, help="default: all"
    )
    args = parser.parse_args()
    print(uvloop.run(measure(args.jobs, args.systems)))


if __name__ == "__main__":
    main()
