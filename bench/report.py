"""The bench's table, in Markdown: every jobcast figure beside its baseline, with the ratio."""

from bench import guarantees
from bench.peer_systems import PEERS
from bench.plan import Plan
from bench.runner import Results, median
from bench.workloads import BATCH_SIZE, Latency

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
    if r.peer_w1:
        lines += ["", render_peers(plan, r), "", guarantees.render(), ""]
    return "\n".join(lines)


def _w2(latencies: list[Latency], attr: str) -> float:
    return median([getattr(x, attr) for x in latencies])


def render_peers(plan: Plan, r: Results) -> str:
    """jobcast beside the peers a user would pick instead, with jobcast ÷ each: over AMQP
    against the AMQP systems, over HTTP against the FastAPI example."""
    amqp = median(r.w1_amqp["jobcast"])
    http = median(r.w1_http["jobcast"])
    feed = median(r.w1_feed) if r.w1_feed else 0.0
    amqp_w2 = r.w2_amqp or r.w2["jobcast"]
    amqp_p50 = _w2(amqp_w2, "done_p50")
    http_p50 = _w2(r.w2["jobcast"], "done_p50")

    def w2(latencies: list[Latency]) -> tuple[float, float, float]:
        if not latencies:
            return 0.0, 0.0, 0.0
        return (
            _w2(latencies, "done_p50"),
            _w2(latencies, "done_p95"),
            _w2(latencies, "first_p50"),
        )

    # (label, W1, (W2 p50, p95, first p50), jobcast's W1 and W2 p50 to divide, or None)
    rows: list[tuple[str, float, tuple[float, float, float], tuple[float, float] | None]] = [
        (
            "**jobcast over AMQP** (RPC submit; W1: done read from the ledger; W2: a `reply.*` "
            "subscriber)",
            amqp,
            w2(r.w2_amqp),
            None,
        ),
        ("**jobcast over AMQP, the client following `GET /jobs/stream`**", feed, w2([]), None),
        (
            "**jobcast over HTTP** (POST; W2: long poll `?wait=&after=`)",
            http,
            w2(r.w2["jobcast"]),
            None,
        ),
        (
            "aio-pika pipeline (classic, persistent, confirmed)",
            median(r.w1_amqp["pika"]),
            w2(r.w2["pika"]),
            (amqp, amqp_p50),
        ),
        (
            "FastAPI example (HTTP; W2: POST, then GET until done; against jobcast over HTTP)",
            median(r.w1_http["example"]),
            w2(r.w2_example),
            (http, http_p50),
        ),
    ]
    for spec in PEERS:
        if spec.key in r.peer_w1:
            rows.append(
                (
                    spec.label,
                    median(r.peer_w1[spec.key]),
                    w2(r.peer_w2[spec.key]),
                    (amqp, amqp_p50),
                )
            )

    def cell(value: float, digits: int) -> str:
        return f"{value:.{digits}f}" if value else "-"

    lines = [
        f"jobcast beside its peers: W1 {plan.peer_w1_jobs} jobs (three zero-length steps and "
        f"done, every result seen by the client), W2 {plan.peer_w2_jobs} jobs one at a time; "
        f"medians of {plan.peer_repetitions} round(s). Ratios: jobcast ÷ the peer, over AMQP "
        "(over HTTP against the FastAPI example), for W1 (above 1: jobcast faster) and W2 "
        "p50 (below 1: jobcast faster).",
        "",
        "| system | W1 jobs/s | W2 done p50 ms | W2 done p95 ms | W2 first result p50 ms "
        "| W1: jobcast ÷ it | W2 p50: jobcast ÷ it |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for label, w1, (p50, p95, first), mine in rows:
        w1_ratio = _ratio(mine[0], w1) if mine else ""
        w2_ratio = _ratio(mine[1], p50) if mine and p50 else ""
        lines.append(
            f"| {label} | {cell(w1, 0)} | {cell(p50, 1)} | {cell(p95, 1)} | {cell(first, 1)} "
            f"| {w1_ratio} | {w2_ratio} |"
        )
    return "\n".join(lines)
