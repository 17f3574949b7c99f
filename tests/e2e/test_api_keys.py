"""API keys end to end: `jobcast keys` on the ledger, `jobcast serve` with JOBCAST_AUTH=on
following and feeding each key only its own jobs, and no secret in any log line of the run."""

import asyncio
import hashlib
import logging
import os
import subprocess
from pathlib import Path

import httpx
import pytest

from harness.processes import JOBCAST
from jobcast.gateway import warn_if_open
from jobcast.settings import Settings
from tests.e2e.sse import read_events

JOB = {"deployment": "Docker", "framework": "FastAPI", "fn": "default_fn"}


def keys(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return jobcast(env, "keys", *args)


def jobcast(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*JOBCAST, *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def test_keys_made_by_the_cli_scope_a_served_gateway_and_never_reach_a_log(
    spawn, jobcast_env, tmp_path: Path
):
    env = {**jobcast_env, "JOBCAST_AUTH": "on", "JOBCAST_LOG_LEVEL": "DEBUG"}
    made = {
        name: keys(env, "add", name, *extra)
        for name, extra in (("alice", ()), ("bob", ()), ("root", ("--admin",)), ("gone", ()))
    }
    for name, done in made.items():
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("jck_"), name
        assert done.stdout.strip() not in done.stderr
    secrets = {name: done.stdout.strip() for name, done in made.items()}
    again = keys(env, "add", "alice")
    assert again.returncode == 1
    assert "exists already" in again.stderr
    assert keys(env, "revoke", "gone").returncode == 0
    assert keys(env, "revoke", "gone").returncode == 1  # revoked already
    listed = keys(env, "list")
    assert listed.returncode == 0, listed.stderr
    rows = {line.split()[0]: line.split() for line in listed.stdout.splitlines()[1:]}
    assert sorted(rows) == ["alice", "bob", "gone", "root"]
    assert rows["root"][1] == "yes"
    assert rows["alice"][1] == "no"
    assert rows["alice"][-1] == "-"
    assert rows["gone"][-1] != "-"
    cli_output = "".join(d.stdout + d.stderr for d in (again, listed))
    for secret in secrets.values():
        assert secret not in cli_output
        assert hashlib.sha256(secret.encode()).hexdigest() not in listed.stdout

    server = spawn("serve", {**env, "JOBCAST_ACCESS_LOG": "true"}, name="serve")
    server.wait_http()
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:

        async def schedule(name: str) -> int:
            answer = await http.post("/schedule", json=JOB, headers=bearer(secrets[name]))
            assert answer.status_code == 200, answer.text
            return int(answer.json()["offset"])

        mine, theirs = await schedule("alice"), await schedule("bob")
        followed = await read_events(http, f"/messages/{mine}/stream", bearer(secrets["alice"]))
        assert [e.event for e in followed] == ["result", "result", "result", "done"]
        refused = await http.get(f"/messages/{theirs}/stream", headers=bearer(secrets["alice"]))
        assert (refused.status_code, refused.json()) == (404, {"detail": "Offset not found"})
        await read_events(http, f"/messages/{theirs}/stream", bearer(secrets["bob"]))

        async def feed(name: str, replies: int) -> set[int]:
            events = await asyncio.wait_for(
                read_events(http, "/jobs/stream?after=0", bearer(secrets[name]), replies), 30
            )
            return {int(str(e.data["offset"])) for e in events}

        # bob's job ended between alice's two: a feed that let his through shows them among hers
        later = await schedule("alice")
        await read_events(http, f"/messages/{later}/stream", bearer(secrets["alice"]))
        assert await feed("alice", 8) == {mine, later}
        assert await feed("root", 12) == {mine, theirs, later}
        listed = (await http.get("/jobs", headers=bearer(secrets["bob"]))).json()["jobs"]
        assert [row["offset"] for row in listed] == [theirs]
        assert (await http.get("/jobs", headers=bearer(secrets["gone"]))).status_code == 403
        assert (await http.get("/jobs", headers=bearer("jck_" + "x" * 43))).status_code == 401
        assert (await http.get("/metrics", headers=bearer(secrets["bob"]))).status_code == 403
        assert (await http.get("/metrics", headers=bearer(secrets["root"]))).status_code == 200
        # the client commands send JOBCAST_API_KEY
        cli_env = {**env, "JOBCAST_URL": server.url}
        own = jobcast(cli_env | {"JOBCAST_API_KEY": secrets["alice"]}, "status", str(mine))
        assert own.returncode == 0, own.stderr
        other = jobcast(cli_env | {"JOBCAST_API_KEY": secrets["bob"]}, "status", str(mine))
        assert other.returncode == 4, other.stderr  # unknown offset
        keyless = jobcast(cli_env, "status", str(mine))
        assert keyless.returncode == 3
        assert "JOBCAST_API_KEY" in keyless.stderr
        submitted = jobcast(cli_env | {"JOBCAST_API_KEY": secrets["bob"]}, "submit", "--json")
        assert submitted.returncode == 0, submitted.stderr
    server.stop()
    logs = server.log()
    assert "GET /jobs/stream" in logs  # the access log was on: requests were logged
    for secret in secrets.values():
        assert secret not in logs
        assert hashlib.sha256(secret.encode()).hexdigest() not in logs


@pytest.mark.parametrize(
    ("auth", "host", "warned"),
    [
        ("off", "0.0.0.0", True),
        ("off", "10.1.2.3", True),
        ("off", "127.0.0.1", False),
        ("off", "::1", False),
        ("off", "localhost", False),
        ("on", "0.0.0.0", False),
    ],
)
def test_the_gateway_warns_when_auth_is_off_off_this_machine(caplog, auth, host, warned):
    with caplog.at_level(logging.WARNING, logger="jobcast.gateway"):
        warn_if_open(Settings(auth=auth, host=host))
    assert ("JOBCAST_AUTH=off" in caplog.text) is warned
