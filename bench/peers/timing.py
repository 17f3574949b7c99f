"""What a peer's client process measures and prints: one JSON line per workload.

The client times itself (the clock runs from its first submission until it has seen every
job's done) and reports its own CPU (user + system, all threads) over the same span, so the
bench can put the client's share beside the workers' and the broker's.
"""

import json
import resource
import statistics
import sys
import time
from dataclasses import asdict, dataclass

JOB = {"deployment": "Docker", "framework": "FastAPI", "fn": "default_fn"}
STEPS = ("result1", "result2", "result3")
WINDOW = 256
"""Submissions in flight at once, as in bench/clients.py."""


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Throughput:
    jobs: int
    seconds: float
    results_seen: int
    client_cpu_seconds: float

    @property
    def rate(self) -> float:
        return self.jobs / self.seconds


@dataclass
class Latencies:
    first: list[float]
    done: list[float]
    client_cpu_seconds: float


class Stopwatch:
    """Wall clock and this process's CPU since it was made."""

    def __init__(self) -> None:
        self.began = time.perf_counter()
        self.cpu = cpu_seconds()

    def elapsed(self) -> float:
        return time.perf_counter() - self.began

    def cpu_used(self) -> float:
        return cpu_seconds() - self.cpu


def emit(result: Throughput | Latencies) -> None:
    """The one line the bench reads from the client's stdout."""
    kind = "throughput" if isinstance(result, Throughput) else "latency"
    sys.stdout.write(json.dumps({"kind": kind, **asdict(result)}) + "\n")
    sys.stdout.flush()


def percentile(values: list[float], q: int) -> float:
    """The q-th percentile in milliseconds (inclusive method, as bench/workloads.py)."""
    if len(values) == 1:
        return values[0] * 1000
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] * 1000
