"""The bench's table, in Markdown: every jobcast figure beside its baseline, with the ratio."""

from bench.plan import Plan
from bench.runner import Results, median
from bench.workloads import BATCH_SIZE

MIB = 2**20


def _ratio(value: float, baseline: float) -> str:
    return f"{value / baseline:.2f}x" if baseline else "n/a"


def _verdict(ok: bool) -> str:
    return "met" if ok else "**not met**"


def render(plan: Plan, r: Results) -> str:
    """The table of one run, with how it ran."""
    rows: list[tuple[str, str, str, str, str]] = []

    def row(what: str, jobcast: str, baseline: str, ratio: str, target: str) -> None:
        rows.append((what, jobcast, baseline, ratio, target))

    amqp, pika = median(r.w1_amqp["jobcast"]), median(r.w1_amqp["pika"])
    row(
        "W1 over AMQP, jobs/s",
        f"{amqp:.0f}",
        f"{pika:.0f} (aio-pika)",
        _ratio(amqp, pika),
        f"≥ 0.9x: {_verdict(amqp >= 0.9 * pika)}",
    )
    http, example = median(r.w1_http["jobcast"]), median(r.w1_http["example"])
    row(
        "W1 over HTTP, jobs/s",
        f"{http:.0f}",
        f"{example:.0f} (FastAPI example)",
        _ratio(http, example),
        f"> 1x: {_verdict(http > example)}",
    )
    batched = median(r.w1_batches)
    row(
        f"W1 over HTTP in batches of {BATCH_SIZE}, jobs/s",
        f"{batched:.0f}",
        f"{http:.0f} (jobcast, one per POST /schedule)",
        _ratio(batched, http),
        "",
    )
    for label, attr in (("first result", "first"), ("done", "done")):
        for pct in ("p50", "p99"):
            mine = median([getattr(x, f"{attr}_{pct}") for x in r.w2["jobcast"]])
            base = median([getattr(x, f"{attr}_{pct}") for x in r.w2["pika"]])
            target = ""
            if (attr, pct) == ("done", "p50"):
                target = f"≤ 1x: {_verdict(mine <= base)}"
            row(
                f"W2 submit → {label} readable, {pct} ms",
                f"{mine:.1f}",
                f"{base:.1f} (aio-pika)",
                _ratio(mine, base),
                target,
            )
    w3, single = r.w3.get("jobcast", 0.0), r.w3.get("single_slot", 0.0)
    row(
        f"W3 {plan.w3_jobs} jobs x 3 steps of {plan.step_seconds * 1000:.0f} ms, jobs/s",
        f"{w3:.0f}",
        f"{single:.2f} (single-slot worker)",
        _ratio(w3, single),
        f"≥ 100x: {_verdict(w3 >= 100 * single)}",
    )
    pika_w3 = r.w3.get("pika", 0.0)
    row(
        "W3, against the aio-pika baseline",
        f"{w3:.0f}",
        f"{pika_w3:.0f} (aio-pika)",
        _ratio(w3, pika_w3),
        "",
    )
    row(
        "W3 worker peak RSS, MiB (growth from the 1st to the 2nd run)",
        f"{r.w3.get('worker_rss_peak', 0) / MIB:.0f} "
        f"({r.w3.get('worker_rss_growth', 0) / MIB:+.1f})",
        "",
        "",
        "flat",
    )
    m = r.memory
    if m is not None:
        row(
            f"Memory run ({plan.memory_jobs} jobs, W1 over AMQP), jobs/s",
            f"{m.rate:.0f}",
            "",
            _ratio(m.rate, pika),
            "",
        )
        row(
            "Gateway peak RSS, MiB (growth first → last quarter)",
            f"{m.gateway_peak / MIB:.0f} ({m.gateway_growth / MIB:+.1f})",
            f"{r.pika_rss.get('recorder', 0) / MIB:.0f} (recorder)",
            _ratio(m.gateway_peak, r.pika_rss.get("recorder", 0)),
            "flat",
        )
        row(
            "Worker peak RSS, MiB (growth first → last quarter)",
            f"{m.worker_peak / MIB:.0f} ({m.worker_growth / MIB:+.1f})",
            f"{r.pika_rss.get('worker', 0) / MIB:.0f} (worker)",
            _ratio(m.worker_peak, r.pika_rss.get("worker", 0)),
            "flat",
        )
    row(
        "Ledger bytes per job (SQLite, 4 replies)",
        f"{r.ledger_bytes_per_job:.0f}",
        "0 (in memory)",
        "",
        "",
    )

    lines = [
        f"Plan `{plan.name}`: {plan.repetitions} repetition(s), medians; "
        f"W1 {plan.w1_amqp_jobs} jobs over AMQP, {plan.w1_http_jobs} over HTTP; "
        f"W2 {plan.w2_jobs} sequential jobs. Ran {r.seconds:.0f} s on {r.machine}.",
        "",
        "| Workload | jobcast | baseline | jobcast ÷ baseline | target |",
        "|---|---:|---:|---:|---|",
        *(f"| {' | '.join(cells)} |" for cells in rows),
        "",
        "Every repetition: "
        + "; ".join(
            f"{name} {', '.join(f'{v:.0f}' for v in values)}"
            for name, values in (
                ("W1 AMQP jobcast", r.w1_amqp["jobcast"]),
                ("aio-pika", r.w1_amqp["pika"]),
                ("W1 HTTP jobcast", r.w1_http["jobcast"]),
                (f"in batches of {BATCH_SIZE}", r.w1_batches),
                ("FastAPI example", r.w1_http["example"]),
            )
        )
        + " jobs/s.",
        "",
    ]
    return "\n".join(lines)
