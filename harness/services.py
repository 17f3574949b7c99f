"""The services `make run` and `make test` need, started when nothing answers.

`python3 -m harness.services run|test [-- command ...]`: for each service the command needs
whose URL nothing answers on, start the machine's own server (`rabbitmq-server -detached`, then
`rabbitmqctl await_startup`; the PostgreSQL cluster with `pg_ctlcluster`) or, for `run`, the
compose file's RabbitMQ where a Docker engine exists, and wait until it answers; where there is
no way, say in one line how to get one. Exit 1 if a service is still not answering; otherwise
run the command (with the URL of a broker it started, if the caller had not set one).

Standard library only: it runs with the system python3, before the venv exists. The decisions
are plain functions of what the machine has (`Machine`), unit tested with fakes.
"""

import glob
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from harness import browser
from harness.broker import DEFAULT_URL as TEST_AMQP_URL
from harness.broker import reachable

RUN_AMQP_URL = "amqp://guest:guest@localhost:5672/"
"""jobcast's own default broker URL (jobcast.settings; a unit test keeps the two equal)."""
TEST_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
COMPOSE_AMQP_URL = "amqp://jobcast-gateway:gateway-dev@localhost:5672/"
"""The compose file's RabbitMQ, as its gateway's user (it has no guest: the users of
deploy/rabbitmq/definitions.json, with compose's dev-only passwords)."""
START_SECONDS = 120
SBIN = ("/usr/sbin", "/sbin", "/usr/lib/rabbitmq/bin")
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", ""}
DEFAULT_PORTS = {"rabbitmq": 5672, "postgres": 5432}


@dataclass(frozen=True)
class Machine:
    """What the decisions look at: the real machine's answers, or fakes in the tests."""

    answers: Callable[[str], bool]
    installed: Callable[[str], bool]
    docker_engine: Callable[[], bool]
    postgres_clusters: Callable[[], list[str]]


@dataclass(frozen=True)
class Need:
    """One service a command needs: its name, URL and the variable that sets the URL."""

    service: str  # "rabbitmq" or "postgres"
    url: str
    variable: str
    explicit: bool  # the caller set the variable


@dataclass(frozen=True)
class Plan:
    """What to do about one service: nothing, run `commands` and wait for `url`, or give up."""

    action: str  # "none", "start" or "give_up"
    say: str = ""
    commands: tuple[tuple[str, ...], ...] = ()
    url: str = ""
    env: dict[str, str] = field(default_factory=dict)


def needs(mode: str, env: Mapping[str, str]) -> list[Need]:
    """The services `make run` or `make test` needs, at the URLs the environment gives."""
    if mode == "run":
        found = [_need("rabbitmq", "JOBCAST_AMQP_URL", RUN_AMQP_URL, env)]
        database = env.get("JOBCAST_DATABASE_URL", "")
        if database.startswith(("postgresql:", "postgres:")):
            found.append(Need("postgres", database, "JOBCAST_DATABASE_URL", explicit=True))
        return found
    return [
        _need("rabbitmq", "JOBCAST_TEST_AMQP_URL", TEST_AMQP_URL, env),
        _need("postgres", "JOBCAST_TEST_POSTGRES_URL", TEST_POSTGRES_URL, env),
    ]


def _need(service: str, variable: str, default: str, env: Mapping[str, str]) -> Need:
    return Need(service, env.get(variable, default), variable, explicit=variable in env)


def plan(need: Need, mode: str, machine: Machine) -> Plan:
    """What to do so that `need` answers on this machine."""
    where = _host_port(need.url)
    if machine.answers(need.url):
        return Plan("none")
    parts = urlsplit(need.url)
    if parts.hostname not in LOCAL_HOSTS:
        return Plan("give_up", f"nothing answers on {where} ({need.variable}): start it there")
    if parts.port not in (None, DEFAULT_PORTS[need.service]):
        # NOTE: what this starts listens on the default port; another one stays the caller's
        return Plan("give_up", f"nothing answers on {where} ({need.variable}): start it there")
    if need.service == "rabbitmq":
        return _plan_rabbitmq(need, mode, machine, where)
    return _plan_postgres(need, machine, where)


def _plan_rabbitmq(need: Need, mode: str, machine: Machine, where: str) -> Plan:
    if machine.installed("rabbitmq-server"):
        return Plan(
            "start",
            f"RabbitMQ is not answering on {where}: starting the machine's rabbitmq-server",
            (
                ("rabbitmq-server", "-detached"),
                ("rabbitmqctl", "await_startup", "--timeout", str(START_SECONDS)),
            ),
            need.url,
        )
    if mode == "test":
        # NOTE: the suite makes a vhost per test with rabbitmqctl and the fault suite starts
        # nodes of its own with rabbitmq-server: a broker in a container serves neither.
        return Plan(
            "give_up",
            f"RabbitMQ is not answering on {where}, and the tests need the machine's own: "
            "apt-get install rabbitmq-server (or set JOBCAST_TEST_AMQP_URL)",
        )
    if machine.docker_engine():
        url = need.url if need.explicit else COMPOSE_AMQP_URL
        return Plan(
            "start",
            f"RabbitMQ is not answering on {where}: starting compose.yaml's (docker compose)",
            (("docker", "compose", "up", "-d", "rabbitmq"),),
            url,
            {} if need.explicit else {need.variable: url},
        )
    return Plan(
        "give_up",
        f"RabbitMQ is not answering on {where}: apt-get install rabbitmq-server, or install "
        f"Docker (make run then starts compose.yaml's), or set {need.variable}",
    )


def _plan_postgres(need: Need, machine: Machine, where: str) -> Plan:
    clusters = machine.postgres_clusters()
    if machine.installed("pg_ctlcluster") and clusters:
        version = clusters[0]
        return Plan(
            "start",
            f"PostgreSQL is not answering on {where}: starting the machine's cluster {version}",
            (("pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"),),
            need.url,
        )
    return Plan(
        "give_up",
        f"PostgreSQL is not answering on {where}: apt-get install postgresql "
        f"(trust for local connections), or set {need.variable}",
    )


def carry_out(
    steps: Plan,
    run: Callable[[Sequence[str]], int],
    answers: Callable[[str], bool],
    say: Callable[[str], None],
    *,
    seconds: float = START_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Do the plan: start, then wait (deadline) until its URL answers. True if it answers."""
    if steps.action == "none":
        return True
    say(steps.say)
    if steps.action == "give_up":
        return False
    for command in steps.commands:
        run(command)  # NOTE: the port says whether it worked (a node already booting fails)
    deadline = time.monotonic() + seconds
    while not answers(steps.url):
        if time.monotonic() > deadline:
            say(f"FATAL: still nothing answers on {_host_port(steps.url)} after {seconds:.0f}s")
            return False
        sleep(0.5)
    return True


def _host_port(url: str) -> str:
    parts = urlsplit(url)
    default = 5432 if parts.scheme.startswith("postgres") else 5672
    return f"{parts.hostname or 'localhost'}:{parts.port or default}"


def _installed(command: str) -> bool:
    path = os.pathsep.join([os.environ.get("PATH", ""), *SBIN])
    return shutil.which(command, path=path) is not None


def _docker_engine() -> bool:
    if shutil.which("docker") is None:
        return False
    done = subprocess.run(["docker", "info"], capture_output=True, timeout=30, check=False)
    return done.returncode == 0


def _postgres_clusters() -> list[str]:
    return sorted(os.path.basename(os.path.dirname(p)) for p in glob.glob("/etc/postgresql/*/main"))


def _run(command: Sequence[str]) -> int:
    path = os.pathsep.join([os.environ.get("PATH", ""), *SBIN])
    exe = shutil.which(command[0], path=path) or command[0]
    # NOTE: compose reads the whole file, and the gateway's required JOBCAST_SIGNING_KEY would
    # stop it from starting the broker alone; the broker does not use it.
    env = {"JOBCAST_SIGNING_KEY": "unused by rabbitmq", **os.environ}
    done = subprocess.run([exe, *command[1:]], env=env, check=False, timeout=START_SECONDS + 60)
    return done.returncode


MACHINE = Machine(reachable, _installed, _docker_engine, _postgres_clusters)


def main(argv: list[str]) -> int:
    """`run|test [-- command ...]`: make the services answer, then run the command."""
    mode = argv[0] if argv else ""
    command = argv[2:] if argv[1:2] == ["--"] else []
    if mode not in ("run", "test"):
        print("usage: python3 -m harness.services run|test [-- command ...]", file=sys.stderr)
        return 2
    env = dict(os.environ)
    # NOTE: the browser tests (tests/e2e/test_dashboard.py) drive Debian's chromium.
    if mode == "test" and not browser.ensure(lambda line: print(line, file=sys.stderr), _run):
        return 1
    for need in needs(mode, env):
        steps = plan(need, mode, MACHINE)
        if not carry_out(steps, _run, reachable, lambda line: print(line, file=sys.stderr)):
            return 1
        env.update(steps.env)
    if command:
        os.execvpe(command[0], command, env)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
