"""What each system measured here guarantees, as configured in the bench: the table printed
beside the figures. Each cell says how, so a "yes" can be checked against the code."""

COLUMNS = (
    "persistent jobs",
    "publisher confirms",
    "replicated queues",
    "durable history of every step",
    "exactly-once storage",
    "resume after a worker crash",
)

GUARANTEES: dict[str, tuple[str, ...]] = {
    "jobcast": (
        "yes",
        "yes: submissions, jobs, replies",
        "yes: quorum queues",
        "yes: every reply a ledger row (SQLite `synchronous=FULL` here, or PostgreSQL)",
        "yes: `(offset, seq)` stored once",
        "yes: after the last recorded step",
    ),
    "aio-pika pipeline": (
        "yes",
        "yes",
        "no: classic",
        "no: the recorder's memory",
        "no: a rerun's replies are kept again",
        "reruns the job from its start",
    ),
    "FastAPI example": ("no", "no broker", "no", "no: a list in memory", "no", "no: lost"),
    "Celery, rpc://": (
        "yes",
        "yes: `confirm_publish`",
        "no: classic (Celery's default)",
        "no: states are messages to the caller, read once",
        "no",
        "reruns from its start (`acks_late`, `reject_on_worker_lost`)",
    ),
    "Celery, PostgreSQL results": (
        "yes",
        "yes: `confirm_publish`",
        "no: classic (Celery's default)",
        "no: one row per task, each state overwrites the last",
        "no: a rerun overwrites",
        "reruns from its start (`acks_late`, `reject_on_worker_lost`)",
    ),
    "FastStream, classic": (
        "yes: `persist=True`",
        "yes (its default)",
        "no: classic",
        "no: results are messages, gone once read",
        "no",
        "reruns from its start (acked after the handler)",
    ),
    "FastStream, quorum": (
        "yes: `persist=True`",
        "yes (its default)",
        "yes: quorum",
        "no: results are messages, gone once read",
        "no",
        "reruns from its start (acked after the handler)",
    ),
    "Taskiq, Redis results": (
        "yes",
        "yes (aio-pika's default)",
        "yes: quorum (taskiq-aio-pika's default)",
        "no: progress overwritten; Redis at its defaults (RDB snapshots, no AOF) loses "
        "what came after the last snapshot",
        "no",
        "reruns from its start (`--ack-type when_saved`)",
    ),
}


def render() -> str:
    lines = [
        f"| system | {' | '.join(COLUMNS)} |",
        "|---|" + "---|" * len(COLUMNS),
        *(f"| {system} | {' | '.join(cells)} |" for system, cells in GUARANTEES.items()),
    ]
    return "\n".join(lines)
