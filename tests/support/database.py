"""The ledgers the tests use: a SQLite file, or a fresh PostgreSQL database per test."""

import os
import uuid
from urllib.parse import urlsplit, urlunsplit

import asyncpg

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"


def admin_url() -> str:
    """A PostgreSQL URL allowed to create databases (JOBCAST_TEST_POSTGRES_URL)."""
    return os.environ.get("JOBCAST_TEST_POSTGRES_URL", DEFAULT_ADMIN_URL)


class PostgresDatabase:
    """A database of its own for one test, dropped afterwards."""

    def __init__(self) -> None:
        self.name = f"jobcast_test_{uuid.uuid4().hex[:12]}"
        self.url = urlunsplit(urlsplit(admin_url())._replace(path="/" + self.name))

    async def create(self) -> None:
        conn = await asyncpg.connect(admin_url())
        try:
            await conn.execute(f'CREATE DATABASE "{self.name}"')
        finally:
            await conn.close()

    async def drop(self) -> None:
        conn = await asyncpg.connect(admin_url())
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        finally:
            await conn.close()
