"""What `jobcast ls` and `jobcast watch --tag/--fn/--state` print: many jobs at once.

Values that come from jobs (fn, tags, errors, results) are printed as plain text, never as
rich markup: a tag or a result holding `[red]` shows those characters.
"""

import sys
from datetime import datetime

import orjson
from rich.console import Console
from rich.table import Table
from rich.text import Text

from client.async_client import JobcastClient
from contracts import JobState, Reply, ReplyKind
from contracts.listing import JobRow

STATE_STYLE = {
    JobState.DONE: "green",
    JobState.FAILED: "red",
    JobState.RUNNING: "yellow",
}


async def list_jobs(
    client: JobcastClient,
    *,
    state: JobState | None,
    fn: str | None,
    tag: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """One page of jobs, newest first: a table, or one JSON object per line."""
    page = await client.list_jobs(state=state, fn=fn, tag=tag, limit=limit)
    if as_json:
        for row in page.jobs:
            sys.stdout.write(row.model_dump_json() + "\n")
        return
    table = Table("offset", "fn", "state", "steps", "took", "created", "tags", "error")
    for row in page.jobs:
        table.add_row(*_cells(row))
    console = Console()
    console.print(table)
    if page.next is not None:
        console.print(Text(f"(newest {len(page.jobs)} shown; --limit for more)", style="dim"))


def _cells(row: JobRow) -> list[Text]:
    took = "" if row.duration_seconds is None else f"{row.duration_seconds:.1f}s"
    return [
        Text(str(row.offset)),
        Text(row.fn),
        # NOTE: the state in words as well as colour: readable without colour too
        Text(row.state.value, style=STATE_STYLE.get(row.state, "")),
        Text(str(row.steps)),
        Text(took),
        Text(_when(row.created_at)),
        Text(" ".join(row.tags)),
        Text(row.error or ""),
    ]


def _when(moment: datetime) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


async def watch_many(
    client: JobcastClient,
    *,
    state: JobState | None,
    fn: str | None,
    tag: str | None,
    after: int | None,
    as_json: bool,
) -> None:
    """Every reply of the matching jobs (after cursor `after`; None: from now), live, one line
    each, until interrupted."""
    console = Console()
    if not as_json:
        console.print(Text("following every matching job; Ctrl-C to stop", "dim"))
    async for cursor, reply in client.follow_many(state=state, fn=fn, tag=tag, after=after):
        if as_json:
            line = {"cursor": cursor, **orjson.loads(reply.model_dump_json())}
            sys.stdout.write(orjson.dumps(line).decode() + "\n")
            sys.stdout.flush()
        else:
            console.print(describe(reply))


def describe(reply: Reply) -> Text:
    """One reply of the feed as a line: the job, the step, what it says."""
    value = reply.value if isinstance(reply.value, str) else orjson.dumps(reply.value).decode()
    line = Text(f"offset {reply.offset} ")
    if reply.kind is ReplyKind.RESULT:
        line.append(f"step {reply.seq} ", "green")
    else:
        line.append(reply.kind.value, "bold red" if reply.kind is ReplyKind.ERROR else "bold")
        line.append(" ")
    line.append(value)
    return line
