"""The `jobcast` command: serve, gateway, worker (and the client commands)."""

import asyncio
import sys

import typer
import uvicorn

from contracts import BrokerUnavailableError, LedgerUnavailableError
from jobcast.gateway import create_app
from jobcast.logs import configure_logging
from jobcast.settings import Settings
from jobcast.worker_process import run_worker

app = typer.Typer(help="Hand long-running jobs to RabbitMQ and follow every step live.",
                  no_args_is_help=True, add_completion=False)


def _settings() -> Settings:
    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)
    return settings


def _serve_http(settings: Settings, *, with_worker: bool) -> None:
    config = uvicorn.Config(
        create_app(settings, with_worker=with_worker),
        host=settings.host, port=settings.port, log_config=None,
        timeout_graceful_shutdown=int(settings.grace_seconds) or None,
    )
    server = uvicorn.Server(config)
    try:
        asyncio.run(server.serve())
    except (BrokerUnavailableError, LedgerUnavailableError) as exc:
        _fail(exc)
    if not server.started:
        _fail("the gateway did not start (see the log above)")


def _fail(reason: object) -> None:
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
        asyncio.run(run_worker(settings))
    except BrokerUnavailableError as exc:
        _fail(exc)


def main() -> None:
    """Console entry point."""
    sys.exit(app())
