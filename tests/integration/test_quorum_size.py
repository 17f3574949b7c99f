"""JOBCAST_QUORUM_SIZE (issue 14): the quorum queues jobcast creates get that many replicas
(x-quorum-initial-group-size), read back from the broker; a queue that exists with another
size is used as it is, with a warning that names it and says how to change it, never a
refusal to start. tests/cluster/ shows the replicas on a real three-node cluster."""

import logging
import subprocess

import pytest

from contracts.topology import ALL_QUEUES, JOBS_QUEUE, PROGRESS_QUEUE, QUORUM_SIZE_ARGUMENT
from harness.broker import Vhost
from jobcast.settings import Settings
from messaging.declare import declare_topology


def queue_arguments(vhost: str) -> dict[str, str]:
    out = subprocess.run(
        ["rabbitmqctl", "-q", "list_queues", "-p", vhost, "name", "arguments"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return dict(line.split("\t", 1) for line in out.splitlines() if "\t" in line)


async def test_each_quorum_queue_is_created_with_the_size_asked_for(amqp_url, vhost: Vhost):
    await declare_topology(amqp_url, quorum_size=3)
    arguments = queue_arguments(vhost.name)
    for queue in ALL_QUEUES:
        sized = f'{{"{QUORUM_SIZE_ARGUMENT}",3}}' in arguments[queue.name]
        assert sized == queue.quorum, (queue.name, arguments[queue.name])
    assert QUORUM_SIZE_ARGUMENT not in arguments[PROGRESS_QUEUE.name]  # classic: no replicas


async def test_unset_sends_no_size_rabbitmq_default(amqp_url, vhost: Vhost):
    await declare_topology(amqp_url)
    assert QUORUM_SIZE_ARGUMENT not in queue_arguments(vhost.name)[JOBS_QUEUE.name]


@pytest.mark.parametrize(("first", "then"), [(None, 3), (3, 1), (1, None)])
async def test_a_queue_created_with_another_size_is_used_as_it_is_with_a_warning(
    amqp_url, vhost: Vhost, caplog, first, then
):
    await declare_topology(amqp_url, quorum_size=first)
    before = queue_arguments(vhost.name)
    with caplog.at_level(logging.WARNING, logger="messaging.declare"):
        await declare_topology(amqp_url, quorum_size=then)  # no PRECONDITION_FAILED raised
    assert queue_arguments(vhost.name) == before  # nothing recreated
    warned = [r.getMessage() for r in caplog.records if "initial group size" in r.getMessage()]
    quorum = [q.name for q in ALL_QUEUES if q.quorum]
    assert sorted(m.split()[0] for m in warned) == sorted(quorum)
    assert all(f"JOBCAST_QUORUM_SIZE={then}" in m and "add_member" in m for m in warned)


async def test_the_same_size_again_is_silent(amqp_url, caplog):
    await declare_topology(amqp_url, quorum_size=3)
    with caplog.at_level(logging.WARNING, logger="messaging.declare"):
        await declare_topology(amqp_url, quorum_size=3)
    assert not caplog.records


@pytest.mark.parametrize("value", ["0", "-1", "8", "three", "2.5"])
def test_a_size_that_is_no_replica_count_is_refused_at_start(value, monkeypatch):
    monkeypatch.setenv("JOBCAST_QUORUM_SIZE", value)
    with pytest.raises(ValueError, match="quorum_size"):
        Settings()


@pytest.mark.parametrize(("value", "size"), [("", None), (" ", None), ("1", 1), ("7", 7)])
def test_sizes_read_from_the_environment(value, size, monkeypatch):
    monkeypatch.setenv("JOBCAST_QUORUM_SIZE", value)
    assert Settings().quorum_size == size
