"""TLS to the broker (amqps://) and to PostgreSQL (sslmode), against throwaway servers with a
certificate authority made here: jobcast runs a job over both, and refuses a server whose
certificate it cannot verify (README, Security)."""

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import aio_pika
import asyncpg
import httpx
import pytest
from aio_pika.connection import make_url

from contracts.errors import LedgerUnavailableError
from harness.processes import free_port
from harness.rabbit_node import RabbitNode
from ledger import open_ledger
from tests.faults.postgres_node import PostgresNode, _bin
from tests.support.waiting import eventually

JOB = {"deployment": "Docker", "framework": "FastAPI", "fn": "default_fn"}
DONE = ["result1", "result2", "result3", "done"]


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def pki() -> Iterator[Path]:
    """A CA and a server certificate for localhost and 127.0.0.1 it signed (openssl), in a
    directory the servers' own users can read."""
    if shutil.which("openssl") is None:
        pytest.fail("openssl not found: the TLS tests make their certificates with it")
    folder = Path(tempfile.mkdtemp(prefix="jobcast-tls-"))
    folder.chmod(0o755)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-keyout",
             "ca.key", "-out", "ca.pem", "-subj", "/CN=jobcast test CA", cwd=folder)  # fmt: skip
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key",
             "-out", "server.csr", "-subj", "/CN=localhost", cwd=folder)  # fmt: skip
    (folder / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "server.pem",
             cwd=folder)  # fmt: skip
    for name in ("ca.pem", "server.pem", "server.key"):
        (folder / name).chmod(0o644)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def tls_node(pki: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitNode]:
    """A throwaway RabbitMQ node with a TLS listener beside its plain one."""
    node = RabbitNode(tmp_path_factory.mktemp("tls-node"))
    node.tls_port = free_port()  # type: ignore[attr-defined]
    with (node.dir / "rabbitmq.conf").open("a") as conf:
        conf.write(
            f"listeners.ssl.default = 127.0.0.1:{node.tls_port}\n"  # type: ignore[attr-defined]
            f"ssl_options.cacertfile = {pki / 'ca.pem'}\n"
            f"ssl_options.certfile = {pki / 'server.pem'}\n"
            f"ssl_options.keyfile = {pki / 'server.key'}\n"
            "ssl_options.verify = verify_none\n"
            "ssl_options.fail_if_no_peer_cert = false\n"
        )
    try:
        node.start()
        yield node
    finally:
        node.destroy()


def _amqps(node: RabbitNode, vhost: str, query: str) -> str:
    return f"amqps://guest:guest@localhost:{node.tls_port}/{quote(vhost, safe='')}?{query}"  # type: ignore[attr-defined]


@pytest.fixture
def tls_vhost(tls_node: RabbitNode) -> Iterator[str]:
    name = "tls-test"
    tls_node.add_vhost(name)
    yield name
    tls_node.delete_vhost(name)


async def test_gateway_and_worker_run_a_job_over_amqps(tls_node, tls_vhost, pki, spawn, tmp_path):
    url = _amqps(tls_node, tls_vhost, f"cafile={pki / 'ca.pem'}")
    env = {
        "JOBCAST_AMQP_URL": url,
        "JOBCAST_DATABASE_URL": f"sqlite:///{tmp_path / 'ledger.db'}",
        "JOBCAST_PORT": str(free_port()),
        "JOBCAST_STEP_SECONDS": "0.1",
    }
    gateway = spawn("gateway", env, name="gateway")
    worker = spawn("worker", env, name="worker")
    gateway.wait_http()
    worker.wait_log("worker consuming")
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        offset = (await http.post("/schedule", json=JOB)).json()["offset"]
        await eventually(lambda: _messages(http, offset), until=lambda m: m == DONE)
    # every connection of both processes is a TLS one (none on the plain listener)
    connections = tls_node.ctl(
        "list_connections", "vhost", "ssl", "--no-table-headers", "--quiet"
    ).split("\n")
    ours = [line.split() for line in connections if line.startswith(tls_vhost)]
    assert ours, connections
    assert all(fields[-1] == "true" for fields in ours), ours


async def test_a_broker_certificate_that_cannot_be_verified_is_refused(tls_node, tls_vhost):
    # no CA given: the system's trust store does not know the test CA
    # NOTE: a Connection of our own, closed once refused: the one aio_pika.connect() builds is
    # lost unclosed when it fails, and its __del__ then closes it as a task; collected later
    # with no loop running (often in the next test file), that close is "never awaited".
    connection = aio_pika.Connection(make_url(_amqps(tls_node, tls_vhost, "")))
    try:
        with pytest.raises(ConnectionError) as refused:
            await connection.connect(timeout=10)
    finally:
        await connection.close()
    assert "CERTIFICATE_VERIFY_FAILED" in repr(refused.value), repr(refused.value)


class _TlsPostgres(PostgresNode):
    """The fault suite's throwaway PostgreSQL with ssl=on and the test CA's certificate."""

    def __init__(self, pki: Path) -> None:
        super().__init__()
        for name in ("server.pem", "server.key"):
            shutil.copy(pki / name, self.dir / name)
            if os.geteuid() == 0:
                user = pwd.getpwnam("postgres")
                os.chown(self.dir / name, user.pw_uid, user.pw_gid)
        (self.dir / "server.key").chmod(0o600)

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
            f"-c ssl=on -c ssl_cert_file={self.dir / 'server.pem'} "
            f"-c ssl_key_file={self.dir / 'server.key'}"
        )
        self._run(_bin("pg_ctl"), "-D", str(self.data), "-o", options,
                  "-l", str(self.dir / "server.log"), "-w", "-t", "60", "start")  # fmt: skip


@pytest.fixture
def tls_postgres(pki: Path) -> Iterator[PostgresNode]:
    node = _TlsPostgres(pki)
    try:
        node.start()
        yield node
    finally:
        node.destroy()


async def test_the_ledger_connects_to_postgresql_with_sslmode(tls_postgres, pki):
    base = f"postgresql://postgres@localhost:{tls_postgres.port}/postgres"
    url = f"{base}?sslmode=verify-full&sslrootcert={pki / 'ca.pem'}"
    ledger = open_ledger(url)
    await ledger.open()
    try:
        await ledger.ping()
    finally:
        await ledger.close()
    connection = await asyncpg.connect(url)
    try:
        assert await connection.fetchval("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
    finally:
        await connection.close()
    # a root that did not sign the server's certificate: refused
    wrong_ca = pki / "server.pem"
    refused = open_ledger(f"{base}?sslmode=verify-full&sslrootcert={wrong_ca}")
    with pytest.raises(LedgerUnavailableError):
        await refused.open()


async def _messages(http: httpx.AsyncClient, offset: int) -> list[str]:
    answer = await http.get(f"/messages/{offset}")
    return list(answer.json()) if answer.status_code == 200 else []
