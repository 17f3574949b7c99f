"""`jobcast submit / watch / status` as a user runs them: subprocesses against `jobcast serve`."""

import os
import subprocess

import orjson
import pytest

from harness.processes import JOBCAST, free_port


def jobcast(
    *args: str,
    url: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    command = [*JOBCAST, *args] + (["--url", url] if url else [])
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200", **(env or {})},
    )


def test_submit_watch_shows_each_step_and_exits_zero_when_done(server):
    run = jobcast(
        "submit",
        "--fn",
        "default_fn",
        "--deployment",
        "Docker",
        "--framework",
        "FastAPI",
        "--watch",
        url=server.url,
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert "scheduled offset 0 (default_fn)" in lines[0]
    body = "\n".join(lines[1:])
    for expected in ("step 0  result1", "step 1  result2", "step 2  result3", "done"):
        assert expected in body
    assert body.index("result1") < body.index("result2") < body.index("result3")


def test_a_failed_job_exits_non_zero_with_the_reason(server):
    run = jobcast("submit", "--fn", "breaks", "--watch", url=server.url)
    assert run.returncode == 1
    assert "step 0  almost" in run.stdout
    assert "failed at step 1" in run.stdout
    assert "the disk is on fire" in run.stdout


def test_json_output_for_scripts(server):
    submitted = jobcast("submit", "--json", url=server.url)
    assert submitted.returncode == 0, submitted.stderr
    offset = orjson.loads(submitted.stdout)["offset"]

    watched = jobcast("watch", str(offset), "--json", url=server.url)
    assert watched.returncode == 0, watched.stderr
    replies = [orjson.loads(line) for line in watched.stdout.splitlines()]
    assert [(r["seq"], r["kind"], r["value"]) for r in replies] == [
        (0, "result", "result1"),
        (1, "result", "result2"),
        (2, "result", "result3"),
        (3, "done", "done"),
    ]

    status = jobcast("status", str(offset), "--json", url=server.url)
    assert status.returncode == 0
    record = orjson.loads(status.stdout)
    assert record["state"] == "done"
    assert record["request"]["fn"] == "default_fn"


def test_status_of_a_failed_job_exits_non_zero_and_url_comes_from_the_environment(server):
    offset = orjson.loads(
        jobcast(
            "submit", "--fn", "breaks", "--json", "--watch", env={"JOBCAST_URL": server.url}
        ).stdout.splitlines()[0]
    )
    status = jobcast("status", str(offset["offset"]), env={"JOBCAST_URL": server.url})
    assert status.returncode == 1
    assert "failed" in status.stdout
    assert "the disk is on fire" in status.stdout


def test_unknown_offset(server):
    run = jobcast("watch", "999", url=server.url)
    assert run.returncode == 4
    assert "offset 999 was never handed out" in run.stderr


@pytest.mark.parametrize("command", [["submit"], ["watch", "0"], ["status", "0"]])
def test_unreachable_gateway_is_a_clear_message(command):
    url = f"http://127.0.0.1:{free_port()}"
    run = jobcast(*command, url=url)
    assert run.returncode == 3
    assert f"cannot reach the jobcast gateway at {url}" in run.stderr
    assert "Traceback" not in run.stderr + run.stdout
