"""Progress on the client side, no broker needed: the AMQP follow's join of history and live
replies gives ticks in order and never after their step's result, and `jobcast watch` draws
them as a bar."""

import asyncio
import io
from datetime import timedelta

from rich.console import Console

from client import cli
from client.follow import merge
from client.progress_bar import StepBar
from contracts import JobRecord, JobRequest, JobState, ProgressReport, Reply, ReplyKind
from contracts.messages import utcnow

T0 = utcnow()


def result(seq: int, final: bool = False) -> Reply:
    kind = ReplyKind.DONE if final else ReplyKind.RESULT
    return Reply(offset=7, seq=seq, kind=kind, value=f"v{seq}")


def tick(seq: int, current: int, message: str | None = None) -> Reply:
    return Reply(
        offset=7,
        seq=seq,
        kind=ReplyKind.PROGRESS,
        value={"current": current, "total": 10, "message": message},
        produced_at=T0 + timedelta(milliseconds=seq * 1000 + current),
    )


def label(reply: Reply) -> str:
    if reply.kind is ReplyKind.PROGRESS:
        return f"{reply.seq}:{reply.value['current']}"  # type: ignore[call-overload,index]
    return str(reply.seq)


async def follow(history: list[Reply], live: list[Reply], after: int = -1) -> list[str]:
    queue: asyncio.Queue[Reply] = asyncio.Queue()
    for reply in live:
        queue.put_nowait(reply)

    async def recorded(since: int) -> list[Reply]:
        return [r for r in history if r.seq > since]

    merged = merge(recorded, queue, after, reread_seconds=0.2, gap_seconds=2)
    return [label(r) async for r in merged]


async def test_live_ticks_come_in_order_before_their_steps_result():
    live = [tick(0, 1), tick(0, 5), result(0), tick(1, 3), result(1), result(2, final=True)]
    assert await follow([], live) == ["0:1", "0:5", "0", "1:3", "1", "2"]


async def test_a_tick_older_than_one_given_or_of_a_step_already_done_is_dropped():
    live = [tick(0, 5), tick(0, 4), result(0), tick(0, 9), result(1, final=True)]
    assert await follow([], live) == ["0:5", "0", "1"]


async def test_a_tick_of_a_later_step_waits_for_the_results_before_it():
    # step 0's result is recorded but not yet read, step 1's tick is live already
    history = [result(0)]
    live = [tick(1, 2), result(1), result(2, final=True)]
    assert await follow(history, live) == ["0", "1:2", "1", "2"]


def test_watch_draws_a_bar_with_the_count_and_message_on_a_terminal():
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120, color_system=None)
    with StepBar(console, 7) as bar:
        bar.show(tick(1, 4, message="resizing [bold]x[/bold]"))
    drawn = out.getvalue()  # every frame drawn, the last one as it stopped
    assert "offset 7: step 1" in drawn
    assert "4/10" in drawn
    assert "resizing [bold]x[/bold]" in drawn  # a step's message is text, never markup


def test_status_shows_the_running_steps_latest_tick_as_text(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    record = JobRecord(
        offset=7,
        state=JobState.RUNNING,
        request=JobRequest(deployment="Docker", framework="FastAPI", fn="p"),
        replies=[result(0)],
        created_at=T0,
        updated_at=T0,
        progress=ProgressReport(current=4, total=10, message="[red]x[/red]", seq=1, produced_at=T0),
    )
    cli._print_record(record)
    assert "step 1: 4 of 10 [red]x[/red]" in capsys.readouterr().out
