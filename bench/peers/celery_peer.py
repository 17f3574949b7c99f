"""Celery on the RabbitMQ broker: one task runs the three steps, `update_state` after each.

Its recommended safe settings: `task_acks_late` with `task_reject_on_worker_lost` (a job is
acknowledged once it ran, and handed back if its worker process dies), publisher confirms
(`confirm_publish`), persistent task messages (Celery's default) and, with rpc://, persistent
result messages. Results either as messages on the caller's reply queue (`rpc://`) or rows in
PostgreSQL through SQLAlchemy (`db+postgresql://`), each state overwriting the last.

    BENCH_PEER_AMQP_URL=... BENCH_PEER_BACKEND=rpc://|db+postgresql://... \\
        celery -A bench.peers.celery_peer worker          # the worker, at Celery's defaults
    python -m bench.peers.celery_peer w1|w2 N             # the client
"""

import os
import sys
import time
from typing import Any

from celery import Celery, Task
from celery.result import AsyncResult, ResultSet

from bench.peers.timing import (
    JOB,
    STEPS,
    Latencies,
    Stopwatch,
    Throughput,
    emit,
)

POLL_SECONDS = 0.001
"""How often the client asks the database backend (Celery's default is 0.5 s)."""

app = Celery(
    "bench_peer",
    broker=os.environ.get("BENCH_PEER_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//"),
    backend=os.environ.get("BENCH_PEER_BACKEND", "rpc://"),
)
app.conf.update(
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    task_default_delivery_mode="persistent",
    result_persistent=True,
    broker_transport_options={"confirm_publish": True},
    broker_connection_retry_on_startup=True,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    worker_hijack_root_logger=False,
)


@app.task(bind=True, name="bench.pipeline")
def pipeline(self: Task, job: dict[str, str]) -> str:
    """Three zero-length steps, each result published as the task's state, then done."""
    for step, value in enumerate(STEPS, start=1):
        time.sleep(0)
        self.update_state(state="PROGRESS", meta={"step": step, "value": value})
    return "done"


def _native(backend: object) -> bool:
    return bool(getattr(backend, "supports_native_join", False))


def w1(jobs: int) -> Throughput:
    """Submit every job, then gather every state message (rpc://) or every final result."""
    seen = [0]

    def on_message(meta: dict[str, Any]) -> None:
        seen[0] += 1

    clock = Stopwatch()
    results = [pipeline.apply_async((JOB,)) for _ in range(jobs)]
    group = ResultSet(results)
    if _native(app.backend):
        group.join_native(on_message=on_message, timeout=120 + jobs / 20)
    else:  # polling backends: Celery's join, one result after another
        values = group.join(interval=POLL_SECONDS, timeout=120 + jobs / 20)
        seen[0] = len(values)
    return Throughput(jobs, clock.elapsed(), seen[0], clock.cpu_used())


def w2(jobs: int) -> Latencies:
    """One job at a time: submit → its first step's state seen → done seen."""
    first: list[float] = []
    done: list[float] = []
    clock = Stopwatch()
    for _ in range(jobs):
        began = time.perf_counter()
        result = pipeline.apply_async((JOB,))
        firsts: list[float] = []
        if _native(app.backend):

            def on_message(meta: dict[str, Any], firsts: list[float] = firsts) -> None:
                if meta.get("status") == "PROGRESS" and not firsts:
                    firsts.append(time.perf_counter())

            result.get(on_message=on_message, timeout=30)
        else:
            _poll(result, firsts)
        done.append(time.perf_counter() - began)
        # a polling client can miss a state that was overwritten before it looked
        first.append((firsts[0] if firsts else time.perf_counter()) - began)
    return Latencies(first, done, clock.cpu_used())


def _poll(result: AsyncResult, firsts: list[float]) -> None:
    deadline = time.monotonic() + 30
    while True:
        state = result.state
        if state == "PROGRESS" and not firsts:
            firsts.append(time.perf_counter())
        if state == "SUCCESS":
            return
        if state == "FAILURE" or time.monotonic() > deadline:
            raise RuntimeError(f"task {result.id} ended {state}")
        time.sleep(POLL_SECONDS)


def main() -> None:
    mode, jobs = sys.argv[1], int(sys.argv[2])
    pipeline.apply_async((JOB,)).get(timeout=60)  # warm-up: connections, queues, tables
    emit(w1(jobs) if mode == "w1" else w2(jobs))


if __name__ == "__main__":
    main()
