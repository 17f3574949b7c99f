"""Choosing the ledger from its URL."""

from urllib.parse import urlparse

from contracts.urls import masked_url
from ledger.postgres import PostgresLedger
from ledger.protocol import Ledger
from ledger.sqlite import SqliteLedger


def open_ledger(url: str) -> Ledger:
    """`sqlite:///path/to/file.db` or `postgresql://user@host/db`; call `open()` before use."""
    scheme = urlparse(url).scheme
    if scheme == "sqlite":
        # sqlite:///relative.db → relative.db; sqlite:////abs/path.db → /abs/path.db
        path = url.removeprefix("sqlite://").removeprefix("/")
        if not path:
            raise ValueError("a SQLite ledger needs a file: sqlite:///jobcast.db")
        return SqliteLedger(path)
    if scheme in {"postgresql", "postgres"}:
        return PostgresLedger(url)
    raise ValueError(
        f"unsupported ledger URL {masked_url(url)!r}: use sqlite:///file.db or postgresql://..."
    )
