"""`make run` and `make test` start what is not answering, or say in one line how to get it;
the decisions on fake machines (the shared broker is never stopped to try them)."""

from collections.abc import Sequence

import pytest

from harness.services import (
    COMPOSE_AMQP_URL,
    RUN_AMQP_URL,
    Machine,
    Need,
    Plan,
    carry_out,
    needs,
    plan,
)
from jobcast.settings import Settings

RABBIT = Need("rabbitmq", "amqp://guest:guest@localhost:5672/", "JOBCAST_AMQP_URL", False)
POSTGRES = Need("postgres", "postgresql://postgres@127.0.0.1:5432/test", "X_URL", False)


def machine(
    *, answering: bool = False, installed: Sequence[str] = (), docker: bool = False
) -> Machine:
    return Machine(
        answers=lambda url: answering,
        installed=lambda command: command in installed,
        docker_engine=lambda: docker,
        postgres_clusters=lambda: ["15"] if "pg_ctlcluster" in installed else [],
    )


@pytest.mark.parametrize("mode", ["run", "test"])
def test_a_service_that_answers_is_left_alone(mode):
    everything = machine(answering=True, installed=["rabbitmq-server", "pg_ctlcluster"])
    assert plan(RABBIT, mode, everything).action == "none"
    assert plan(POSTGRES, mode, everything).action == "none"


@pytest.mark.parametrize("mode", ["run", "test"])
def test_the_machines_rabbitmq_server_is_started_first(mode):
    steps = plan(RABBIT, mode, machine(installed=["rabbitmq-server"], docker=True))
    assert steps.action == "start"
    assert steps.commands == (
        ("rabbitmq-server", "-detached"),
        ("rabbitmqctl", "await_startup", "--timeout", "120"),
    )
    assert steps.url == RABBIT.url
    assert steps.env == {}


def test_make_run_starts_the_compose_rabbitmq_where_docker_is_and_runs_against_it():
    steps = plan(RABBIT, "run", machine(docker=True))
    assert steps.action == "start"
    assert steps.commands == (("docker", "compose", "up", "-d", "rabbitmq"),)
    assert steps.env == {"JOBCAST_AMQP_URL": COMPOSE_AMQP_URL}  # compose's user, not guest


def test_a_url_the_caller_set_is_kept_with_the_compose_rabbitmq():
    mine = Need("rabbitmq", "amqp://me:secret@localhost:5672/", "JOBCAST_AMQP_URL", True)
    steps = plan(mine, "run", machine(docker=True))
    assert steps.url == mine.url
    assert steps.env == {}


def test_without_rabbitmq_server_or_docker_one_line_says_how_to_get_one():
    steps = plan(RABBIT, "run", machine())
    assert steps.action == "give_up"
    assert "\n" not in steps.say
    assert "apt-get install rabbitmq-server" in steps.say
    assert "Docker" in steps.say


def test_make_test_needs_the_machines_own_rabbitmq_not_a_container():
    steps = plan(RABBIT, "test", machine(docker=True))
    assert steps.action == "give_up"
    assert "rabbitmq-server" in steps.say
    assert "\n" not in steps.say


def test_a_broker_on_another_host_is_never_started_here():
    remote = Need("rabbitmq", "amqp://guest:guest@rabbit.example:5672/", "JOBCAST_AMQP_URL", True)
    steps = plan(remote, "run", machine(installed=["rabbitmq-server"], docker=True))
    assert steps.action == "give_up"
    assert "rabbit.example:5672" in steps.say


def test_a_local_url_on_another_port_is_never_started_here():
    elsewhere = Need("rabbitmq", "amqp://127.0.0.1:5999/", "JOBCAST_TEST_AMQP_URL", True)
    steps = plan(elsewhere, "test", machine(installed=["rabbitmq-server"]))
    assert steps.action == "give_up"
    assert "127.0.0.1:5999 (JOBCAST_TEST_AMQP_URL)" in steps.say


def test_postgresql_is_started_with_pg_ctlcluster_or_one_line_says_how():
    steps = plan(POSTGRES, "test", machine(installed=["pg_ctlcluster"]))
    start = ("pg_ctlcluster", "--skip-systemctl-redirect", "15", "main", "start")  # as .ci/run
    assert steps.commands == (start,)
    missing = plan(POSTGRES, "test", machine())
    assert missing.action == "give_up"
    assert "apt-get install postgresql" in missing.say


def test_make_test_needs_both_and_make_run_postgresql_only_when_its_ledger_is_there():
    assert [n.service for n in needs("test", {})] == ["rabbitmq", "postgres"]
    assert [n.service for n in needs("run", {})] == ["rabbitmq"]
    on_postgres = needs("run", {"JOBCAST_DATABASE_URL": "postgresql://db@localhost/jobcast"})
    assert [n.service for n in on_postgres] == ["rabbitmq", "postgres"]
    assert needs("run", {})[0].url == RUN_AMQP_URL
    assert needs("test", {"JOBCAST_TEST_AMQP_URL": "amqp://x@h:1/"})[0].explicit


def test_make_run_looks_where_jobcast_connects_by_default():
    assert Settings.model_fields["amqp_url"].default == RUN_AMQP_URL


def test_a_started_service_is_awaited_and_one_that_never_answers_fails_loudly():
    ran: list[Sequence[str]] = []
    said: list[str] = []
    start = Plan("start", "starting", (("rabbitmq-server", "-detached"),), RABBIT.url)
    answers_on_third_look = iter([False, False, True])

    def run(command: Sequence[str]) -> int:
        ran.append(command)
        return 0

    assert carry_out(start, run, lambda url: next(answers_on_third_look), said.append, sleep=_no)
    assert ran == [("rabbitmq-server", "-detached")]
    assert said == ["starting"]

    said.clear()
    assert not carry_out(start, run, lambda url: False, said.append, seconds=0, sleep=_no)
    assert said[-1].startswith("FATAL: still nothing answers on localhost:5672")


def test_giving_up_says_why_and_starts_nothing():
    said: list[str] = []
    assert not carry_out(Plan("give_up", "how to"), _never_run, _never_asked, said.append)
    assert said == ["how to"]
    assert carry_out(Plan("none"), _never_run, _never_asked, said.append)


def _no(seconds: float) -> None:
    pass


def _never_run(command: Sequence[str]) -> int:
    raise AssertionError(f"ran {command}")


def _never_asked(url: str) -> bool:
    raise AssertionError("asked")
