"""Fixtures every test may use: the real broker in a throwaway vhost, ledgers, processes."""

import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from harness.broker import Vhost, base_url, reachable
from harness.processes import JobcastProcess, free_port
from ledger import Ledger, open_ledger
from tests.support.database import PostgresDatabase


@pytest.fixture(scope="session")
def amqp_base_url() -> Iterator[str]:
    """The real RabbitMQ: the local one, or a testcontainer where Docker exists."""
    url = base_url()
    if reachable(url):
        yield url
        return
    if (
        shutil.which("docker")
        and subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0
    ):
        from testcontainers.community.rabbitmq import RabbitMqContainer

        with RabbitMqContainer("rabbitmq:3.13-management") as container:
            params = container.get_connection_params()
            yield f"amqp://guest:guest@{params.host}:{params.port}/"
        return
    pytest.fail(f"RabbitMQ is not reachable at {url} and no Docker engine can start one")


@pytest.fixture
def vhost(amqp_base_url: str) -> Iterator[Vhost]:
    """A fresh vhost: jobcast's fixed queue names, isolated from every other test."""
    created = Vhost(amqp_base_url)
    yield created
    created.delete()


@pytest.fixture
def amqp_url(vhost: Vhost) -> str:
    """The URL of this test's own vhost."""
    return vhost.url


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A fresh PostgreSQL database for this test."""
    database = PostgresDatabase()
    await database.create()
    yield database.url
    await database.drop()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite ledger file for this test."""
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """Each ledger in turn: the test runs once on SQLite, once on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.db'}"
        return
    database = PostgresDatabase()
    await database.create()
    yield database.url
    await database.drop()


@pytest.fixture
async def ledger(database_url: str) -> AsyncIterator[Ledger]:
    """An open ledger on each database in turn (see `database_url`)."""
    opened = open_ledger(database_url)
    await opened.open()
    yield opened
    await opened.close()


@pytest.fixture
def jobcast_env(amqp_url: str, sqlite_url: str) -> dict[str, str]:
    """Environment for jobcast processes in this test: own vhost, own ledger, fast steps."""
    return {
        "JOBCAST_AMQP_URL": amqp_url,
        "JOBCAST_DATABASE_URL": sqlite_url,
        "JOBCAST_STEP_SECONDS": "0.2",
        "JOBCAST_PORT": str(free_port()),
        "JOBCAST_RETRY_INITIAL_SECONDS": "0.05",
        "JOBCAST_GRACE_SECONDS": "10",
    }


@pytest.fixture
def spawn(tmp_path: Path, vhost: Vhost) -> Iterator["Spawner"]:
    """Start jobcast processes; every one is stopped after the test, before its vhost goes."""
    spawner = Spawner(tmp_path)
    yield spawner
    spawner.stop_all()


class Spawner:
    """Starts `jobcast` subprocesses and remembers them for cleanup."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[JobcastProcess] = []

    def __call__(self, command: str, env: dict[str, str], name: str = "") -> JobcastProcess:
        process = JobcastProcess(
            command, env, self.log_dir, name or f"{command}-{len(self.started)}"
        )
        self.started.append(process.start())
        return process

    def stop_all(self) -> None:
        for process in self.started:
            process.stop()


MARKERS_BY_FOLDER = {
    "integration": ("integration",),
    "e2e": ("e2e",),
    "faults": ("faults",),
    # NOTE: also `faults`: `-m "not faults"` leaves out every test that breaks a broker.
    "cluster": ("cluster", "faults"),
    # NOTE: the bench's tests start jobcast's real processes too: `-m "not e2e"` leaves them out.
    "bench": ("bench", "e2e"),
}
TESTS = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test by the folder it is in (tests/faults/... is `faults`), so that no test
    file has to remember its own marker."""
    for item in items:
        if not item.path.is_relative_to(TESTS):
            continue
        folder = item.path.relative_to(TESTS).parts[0]
        for name in MARKERS_BY_FOLDER.get(folder, ()):
            item.add_marker(name)


def pytest_report_header() -> str:
    return f"jobcast tests: broker {base_url()}, CI={os.environ.get('CI', '')}"
