"""The `jobcast` command: serve, gateway, worker (and the client commands of client/cli.py)."""

import asyncio
import contextlib
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator
from types import FrameType
from typing import NoReturn

import orjson
import typer
import uvicorn
from pydantic import ValidationError

from client import cli as client_cli
from contracts import BrokerUnavailableError, LedgerUnavailableError
from contracts.errors import ConfigurationError
from jobcast import keys_cli, loop
from jobcast.gateway import create_app
from jobcast.http import server_limits
from jobcast.settings import Settings
from jobcast.worker_process import run_worker
from observability.logs import configure_logging

app = typer.Typer(
    help="Hand long-running jobs to RabbitMQ and follow every step live.",
    no_args_is_help=True,
    add_completion=False,
)


def _settings() -> Settings:
    try:
        settings = Settings()
    except ConfigurationError as exc:
        _fail(exc)
    except ValidationError as exc:
        _fail(settings_errors(exc))
    configure_logging(settings.log_format, settings.log_level)
    return settings


def _serve_http(settings: Settings, *, with_worker: bool) -> None:
    try:
        app = create_app(settings, with_worker=with_worker)
    except ConfigurationError as exc:
        _fail(exc)
    # NOTE: the lifespan runs here rather than inside uvicorn, so a broker that cannot be
    # reached at start-up ends the process with a clear message instead of a traceback.
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        # NOTE: off by default: a log line per request cost measurable throughput (bench/).
        access_log=settings.access_log,
        lifespan="off",
        timeout_graceful_shutdown=int(settings.grace_seconds) or None,
        **server_limits.server_options(settings),
    )

    async def run() -> None:
        async with app.router.lifespan_context(app):
            await _DrainingServer(config, app.state.drain).serve()

    try:
        loop.run(run())
    except (BrokerUnavailableError, LedgerUnavailableError) as exc:
        _fail(exc)


class _DrainingServer(uvicorn.Server):
    """uvicorn that, on SIGTERM/SIGINT, first `drain`s the in-process worker while it still
    serves HTTP, then stops and *returns*, so the lifespan stops the rest.

    NOTE: plain uvicorn re-raises the signal once its own shutdown is done, which here would
    kill the process before the lifespan stops the broker consumers and closes the ledger.
    """

    def __init__(self, config: uvicorn.Config, drain: Callable[[], Awaitable[None]]) -> None:
        super().__init__(config)
        self._drain = drain
        self._draining: asyncio.Task[None] | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # NOTE: HTTP stops last: while a long step finishes, reads, streams and /ready (not
        # ready: draining) still answer, so followers of a restart see it through. A second
        # signal stops HTTP at once.
        if self._draining is None:
            self._draining = asyncio.ensure_future(self._drain_then_exit(sig, frame))
        else:
            super().handle_exit(sig, frame)

    async def _drain_then_exit(self, sig: int, frame: FrameType | None) -> None:
        try:
            await self._drain()
        finally:
            # NOTE: uvicorn's own handler, which sse-starlette wraps to end open streams.
            super().handle_exit(sig, frame)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        running = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            running.add_signal_handler(sig, self.handle_exit, sig, None)
        try:
            yield
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                running.remove_signal_handler(sig)


def settings_errors(exc: ValidationError) -> str:
    """Each refused setting in a line, by its variable's name, without its value: a model-wide
    check's input holds every setting, passwords and the signing key among them."""
    lines = []
    for error in exc.errors():
        message = error["msg"].removeprefix("Value error, ")
        name = f"JOBCAST_{str(error['loc'][0]).upper()}" if error["loc"] else ""
        lines.append(message if message.startswith(name) else f"{name}: {message}")
    return "settings refused:\n  " + "\n  ".join(lines)


def _fail(reason: object) -> NoReturn:
    typer.secho(f"jobcast: {reason}", fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


@app.command()
def serve() -> None:
    """Gateway and a worker in one process: the quickstart."""
    _serve_http(_settings(), with_worker=True)


@app.command()
def gateway() -> None:
    """HTTP API, AMQP intake (jobcast.schedule) and the query handler."""
    _serve_http(_settings(), with_worker=False)


@app.command()
def worker() -> None:
    """Run jobs from jobcast.jobs; start as many as you like."""
    settings = _settings()
    try:
        loop.run(run_worker(settings))
    except (BrokerUnavailableError, ConfigurationError) as exc:
        _fail(exc)


app.command()(client_cli.submit)
app.command()(client_cli.watch)
app.command()(client_cli.status)
app.command()(client_cli.ls)
app.command()(client_cli.cancel)
app.add_typer(keys_cli.app, name="keys")


@app.command()
def asyncapi(
    json: bool = typer.Option(False, "--json", help="JSON instead of YAML."),
) -> None:
    """Print the AsyncAPI document of the broker side (jobcast asyncapi > docs/asyncapi.yaml)."""
    from jobcast.asyncapi import document, to_yaml

    typer.echo(
        orjson.dumps(document(), option=orjson.OPT_INDENT_2).decode()
        if json
        else to_yaml(document()),
        nl=False,
    )


def main() -> None:
    """Console entry point."""
    sys.exit(app())
