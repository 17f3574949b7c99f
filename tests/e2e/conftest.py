"""Fixtures of the end-to-end tests."""

import pytest

from harness.processes import JobcastProcess


@pytest.fixture
def server(spawn, jobcast_env) -> JobcastProcess:
    """`jobcast serve` (gateway and worker in one process) with the test pipelines, ready."""
    env = {**jobcast_env, "JOBCAST_PIPELINES": "tests.e2e.follow_pipelines"}
    process = spawn("serve", env, name="serve")
    process.wait_http()
    return process
