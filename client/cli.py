"""The client commands of `jobcast`: submit, watch and status, over the gateway's HTTP API.

Registered on the `jobcast` command by jobcast/cli.py; they need nothing but this library.

Exit codes: 0 the job is done (or, for `status`, not failed; for `cancel`, cancelled or
stopping); 1 the job failed; 2 the request was refused (`cancel`: the job had already ended);
3 the gateway or the broker cannot be reached; 4 the offset was never handed out;
5 `watch --timeout` ran out before the job ended; 6 the job was cancelled.
"""

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from enum import IntEnum
from typing import Annotated, TypeVar

import orjson
import typer
from rich.console import Console
from rich.markup import escape

from client import jobs_cli
from client.async_client import DEFAULT_URL, JobcastClient
from client.errors import GatewayUnreachableError, ScheduleRejectedError
from client.progress_bar import StepBar
from contracts import JobRecord, JobState, Reply, ReplyKind, UnavailableError, UnknownOffsetError
from contracts.control import JobFinishedError

T = TypeVar("T")

URL_VARIABLE = "JOBCAST_URL"
KEY_VARIABLE = "JOBCAST_API_KEY"
"""The API key the client commands send (a gateway with JOBCAST_AUTH=on asks for one)."""
"""The gateway the commands talk to when --url is not given (as in jobcast's Settings.url)."""


class Exit(IntEnum):
    """What `jobcast submit/watch/status` tells the shell."""

    DONE = 0
    FAILED = 1
    REFUSED = 2
    UNREACHABLE = 3
    UNKNOWN_OFFSET = 4
    TIMED_OUT = 5
    CANCELLED = 6


Url = Annotated[
    str | None,
    typer.Option("--url", help="Gateway URL [env JOBCAST_URL, default http://127.0.0.1:8000]"),
]
Json = Annotated[bool, typer.Option("--json", help="One JSON object per line, for scripts.")]


def submit(
    fn: Annotated[str, typer.Option(help="The pipeline to run.")] = "default_fn",
    deployment: Annotated[str, typer.Option(help="The job's deployment.")] = "Docker",
    framework: Annotated[str, typer.Option(help="The job's framework.")] = "FastAPI",
    watch: Annotated[bool, typer.Option("--watch", help="Follow the job until it ends.")] = False,
    json: Json = False,
    url: Url = None,
) -> None:
    """Schedule a job and print its offset; with --watch, show each step as it arrives."""

    async def run(client: JobcastClient) -> Exit:
        offset = await client.schedule(fn=fn, deployment=deployment, framework=framework)
        if json:
            _print_json({"offset": offset})
        else:
            Console().print(f"scheduled [bold]offset {offset}[/bold] ({fn})")
        return await _follow(client, offset, json) if watch else Exit.DONE

    _run(url, run)


StateOption = Annotated[JobState | None, typer.Option("--state", help="Only jobs in this state.")]
FnOption = Annotated[str | None, typer.Option("--fn", help="Only jobs of this pipeline.")]
TagOption = Annotated[str | None, typer.Option("--tag", help="Only jobs with this tag.")]


def watch(
    offset: Annotated[
        int | None,
        typer.Argument(min=0, help="The job's offset; without it, follow many (--tag, ...)."),
    ] = None,
    json: Json = False,
    url: Url = None,
    timeout: Annotated[
        float | None,
        typer.Option(
            min=0,
            help="Give up (exit 5) if the job has not ended after this many seconds in all. "
            "Default: wait for as long as it takes, through gateway restarts.",
        ),
    ] = None,
    tag: TagOption = None,
    fn: FnOption = None,
    state: StateOption = None,
    after: Annotated[
        int | None,
        typer.Option(
            min=0, help="Without an offset: resume after this cursor (0: every reply ever)."
        ),
    ] = None,
) -> None:
    """Follow a job: every step so far, then each new one live, until it is done or failed.
    Without an offset: every reply of every job matching --tag/--fn/--state, live, until
    Ctrl-C."""
    if offset is None:

        async def many(client: JobcastClient) -> Exit:
            await jobs_cli.watch_many(
                client, state=state, fn=fn, tag=tag, after=after, as_json=json
            )
            return Exit.DONE

        _run(url, many)
        return
    _run(url, lambda client: _follow(client, offset, json, timeout))


def ls(
    tag: TagOption = None,
    fn: FnOption = None,
    state: StateOption = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="How many jobs.")] = 20,
    json: Json = False,
    url: Url = None,
) -> None:
    """List jobs, newest first, with their state, steps and duration."""

    async def run(client: JobcastClient) -> Exit:
        await jobs_cli.list_jobs(client, state=state, fn=fn, tag=tag, limit=limit, as_json=json)
        return Exit.DONE

    _run(url, run)


def status(
    offset: Annotated[int, typer.Argument(min=0, help="The job's offset.")],
    json: Json = False,
    url: Url = None,
) -> None:
    """Print a job's state, request and results."""

    async def run(client: JobcastClient) -> Exit:
        record = await client.status(offset)
        if json:
            sys.stdout.write(record.model_dump_json() + "\n")
        else:
            _print_record(record)
        return Exit.FAILED if record.state is JobState.FAILED else Exit.DONE

    _run(url, run)


def cancel(
    offset: Annotated[int, typer.Argument(min=0, help="The job's offset.")],
    json: Json = False,
    url: Url = None,
) -> None:
    """Cancel a job: one not started never runs; a running one stops before its next step."""

    async def run(client: JobcastClient) -> Exit:
        accepted = await client.cancel(offset)
        if json:
            sys.stdout.write(accepted.model_dump_json() + "\n")
        elif accepted.state is JobState.CANCELLED:
            Console().print(f"offset {offset}: [bold yellow]cancelled[/bold yellow]")
        else:
            Console().print(
                f"offset {offset}: cancel requested ({accepted.state}); it stops before its "
                "next step"
            )
        return Exit.DONE

    _run(url, run)


async def _follow(
    client: JobcastClient, offset: int, json: bool, timeout: float | None = None
) -> Exit:
    console = Console()
    outcome = Exit.DONE
    with StepBar(console, offset) as bar:
        async for reply in client.follow(offset, timeout=timeout):
            if json:
                sys.stdout.write(reply.model_dump_json() + "\n")
                sys.stdout.flush()
            elif reply.kind is not ReplyKind.PROGRESS:  # a tick moves the bar, no line of its own
                console.print(_describe(reply))
            bar.show(reply)
            if reply.kind is ReplyKind.ERROR:
                outcome = Exit.FAILED
            if reply.kind is ReplyKind.CANCELLED:
                outcome = Exit.CANCELLED
    return outcome


def _describe(reply: Reply) -> str:
    value = reply.value if isinstance(reply.value, str) else orjson.dumps(reply.value).decode()
    if reply.kind is ReplyKind.RESULT:
        return f"[green]✓[/green] step {reply.seq}  {value}"
    if reply.kind is ReplyKind.DONE:
        return f"[bold green]● done[/bold green]  {value}"
    if reply.kind is ReplyKind.CANCELLED:
        return f"[bold yellow]■ cancelled[/bold yellow] before step {reply.seq}"
    return f"[bold red]✗ failed[/bold red] at step {reply.seq}: {value}"


def _print_record(record: JobRecord) -> None:
    console = Console()
    colour = {JobState.DONE: "green", JobState.FAILED: "red"}.get(record.state, "yellow")
    request = record.request
    console.print(f"offset {record.offset}: [bold {colour}]{record.state}[/bold {colour}]")
    console.print(
        f"  fn={request.fn} deployment={request.deployment} framework={request.framework}"
    )
    console.print(
        f"  created {record.created_at:%Y-%m-%d %H:%M:%S}, "
        f"updated {record.updated_at:%Y-%m-%d %H:%M:%S}"
    )
    for reply in record.replies:
        console.print("  " + _describe(reply))
    if record.progress is not None and not record.state.is_final:
        tick = record.progress
        of = "" if tick.total is None else f" of {tick.total:g}"
        console.print(
            f"  [cyan]…[/cyan] step {tick.seq}: {tick.current:g}{of} {escape(tick.message or '')}"
        )


def _print_json(value: object) -> None:
    sys.stdout.write(orjson.dumps(value).decode() + "\n")


def _run(url: str | None, command: Callable[[JobcastClient], Awaitable[Exit]]) -> None:
    """Run `command` with a client; map errors to a clear message and an exit code."""
    base = url or os.environ.get(URL_VARIABLE) or DEFAULT_URL

    async def main() -> Exit:
        async with JobcastClient(base, api_key=os.environ.get(KEY_VARIABLE) or None) as client:
            return await command(client)

    try:
        code = asyncio.run(main())
    except GatewayUnreachableError as exc:
        code = _fail(Exit.UNREACHABLE, str(exc))
    except UnavailableError as exc:  # the gateway answers 503: broker or ledger down
        code = _fail(Exit.UNREACHABLE, f"jobcast at {base} cannot take it now: {exc}")
    except UnknownOffsetError as exc:
        code = _fail(Exit.UNKNOWN_OFFSET, str(exc))
    except (ScheduleRejectedError, JobFinishedError) as exc:
        code = _fail(Exit.REFUSED, f"refused: {exc}")
    except TimeoutError as exc:
        code = _fail(Exit.TIMED_OUT, str(exc))
    except ValueError as exc:  # the gateway refused a filter (422)
        code = _fail(Exit.REFUSED, str(exc))
    except KeyboardInterrupt:
        code = Exit.FAILED
    raise typer.Exit(int(code))


def _fail(code: Exit, message: str) -> Exit:
    typer.secho(f"jobcast: {message}", fg=typer.colors.RED, err=True)
    return code
