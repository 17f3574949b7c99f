"""A process that cannot reach RabbitMQ says so and exits non-zero."""

import pytest

from harness.processes import free_port


@pytest.mark.parametrize("command", ["worker", "gateway", "serve"])
def test_no_broker_is_a_clear_error_and_a_non_zero_exit(spawn, sqlite_url, command):
    env = {
        "JOBCAST_AMQP_URL": f"amqp://guest:s3cret-pw@127.0.0.1:{free_port()}/",
        "JOBCAST_DATABASE_URL": sqlite_url,
        "JOBCAST_PORT": str(free_port()),
    }
    process = spawn(command, env)
    assert process.wait(60) == 1
    log = process.log()
    assert "cannot reach RabbitMQ at amqp://guest:***@127.0.0.1:" in log
    assert "s3cret-pw" not in log
    assert "Traceback" not in log
