"""`jobcast keys add|list|revoke`: API keys, managed by the operator on the ledger itself
(JOBCAST_DATABASE_URL), not through a gateway. A secret is printed once, at `add`; the ledger
keeps only its sha256 digest."""

import re
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer

from contracts import LedgerUnavailableError
from contracts.principals import KeyRecord, digest, new_secret
from jobcast import loop
from jobcast.settings import Settings
from ledger import Ledger, open_ledger
from ledger.keys import KeyExistsError

T = TypeVar("T")

NAME_PATTERN = r"^[A-Za-z0-9_.:@-]{1,64}$"

app = typer.Typer(help="API keys (JOBCAST_AUTH=on): add, list, revoke.", no_args_is_help=True)


def _on_ledger(action: Callable[[Ledger], Awaitable[T]]) -> T:
    async def run() -> T:
        ledger = open_ledger(Settings().database_url)
        await ledger.open()
        try:
            return await action(ledger)
        finally:
            await ledger.close()

    try:
        return loop.run(run())
    except (LedgerUnavailableError, KeyExistsError) as exc:
        typer.secho(f"jobcast: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None


def _valid_name(name: str) -> str:
    if not re.fullmatch(NAME_PATTERN, name):
        raise typer.BadParameter("1-64 characters of A-Z a-z 0-9 _ . : @ -")
    return name


@app.command("add")
def add(
    name: str = typer.Argument(..., callback=_valid_name, help="The key's name (its jobs' owner)."),
    admin: bool = typer.Option(False, "--admin", help="Sees every job, and /metrics."),
) -> None:
    """Create an API key and print its secret, once: it is not kept, only its digest is."""
    secret = new_secret()
    _on_ledger(lambda ledger: ledger.add_key(name, digest(secret), admin))
    typer.echo(secret)
    typer.secho(
        f"API key {name!r}{' (admin)' if admin else ''} created: send it as "
        "'Authorization: Bearer <key>'. It is shown this once.",
        err=True,
    )


@app.command("list")
def list_keys() -> None:
    """Every key: name, admin, created, revoked (never secrets or digests)."""
    keys: list[KeyRecord] = _on_ledger(lambda ledger: ledger.keys())
    typer.echo(f"{'NAME':<24} {'ADMIN':<5} {'CREATED':<32} REVOKED")
    for key in keys:
        revoked = key.revoked_at.isoformat() if key.revoked_at is not None else "-"
        admin = "yes" if key.admin else "no"
        typer.echo(f"{key.name:<24} {admin:<5} {key.created_at.isoformat():<32} {revoked}")


@app.command("revoke")
def revoke(name: str = typer.Argument(..., help="The key to revoke.")) -> None:
    """Revoke a key from now on: requests with it get 403; its jobs stay its own."""
    if not _on_ledger(lambda ledger: ledger.revoke_key(name)):
        typer.secho(f"jobcast: no API key {name!r} that is not revoked already", err=True)
        raise typer.Exit(1)
    typer.echo(f"API key {name!r} revoked")
