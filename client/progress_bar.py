"""The live line of `jobcast watch`: a spinner between steps, a progress bar while a step
reports how far it got (`ctx.progress`)."""

from types import TracebackType
from typing import Self

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

from contracts import Reply, ReplyKind, StepProgress


class StepBar:
    """One job's live line; `show` each reply as it comes (results are printed above it)."""

    def __init__(self, console: Console, offset: int) -> None:
        self._offset = offset
        self._live = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[message]}", markup=False),
            console=console,
            transient=True,
        )
        self._line = self._live.add_task(f"offset {offset}: waiting…", total=None, message="")

    def __enter__(self) -> Self:
        # NOTE: drawn on a terminal only: piped (scripts, --json) the output stays the lines
        if self._live.console.is_terminal:
            self._live.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._live.live.is_started:
            self._live.stop()

    def show(self, reply: Reply) -> None:
        """A progress reply fills the bar; any other starts waiting for the next step."""
        if reply.kind is ReplyKind.PROGRESS:
            tick = StepProgress.model_validate(reply.value)
            self._live.update(
                self._line,
                description=f"offset {self._offset}: step {reply.seq}",
                total=tick.total,
                completed=tick.current,
                message=tick.message or "",
            )
            return
        self._live.update(
            self._line,
            description=f"offset {self._offset}: waiting for step {reply.seq + 1}…",
            total=None,
            completed=0,
            message="",
        )
