"""The scale-out benchmark still runs end to end (tiny sizes; the numbers mean nothing here)."""

from pathlib import Path

import pytest

from tests.bench.test_bench_smoke import run_bench
from tests.support.database import admin_url

ROWS = (
    "W3, 1 worker(s)",
    "W3, 2 worker(s)",
    "W3, 4 worker(s)",
    "W1, 1 gateway(s)",
    "W1, 2 gateway(s)",
)


# NOTE: five deployments started one after another; 120 s (the suite's default) ran out on the
# 2-core machine at load 8-10 while the other suites ran.
@pytest.mark.timeout(300)
def test_scaling_smoke_run_prints_every_configuration(tmp_path: Path, amqp_base_url: str) -> None:
    out = tmp_path / "scaling.md"
    done = run_bench(
        amqp_base_url,
        "bench.scaling",
        "--size",
        "smoke",
        "--postgres",
        admin_url(),
        "--out",
        str(out),
    )
    table = out.read_text()
    assert table.strip() == done.stdout.strip()
    for row in ROWS:
        line = next((line for line in table.splitlines() if line.startswith(f"| {row} |")), None)
        assert line is not None, f"{row!r} missing from:\n{table}"
        rate = float(line.split("|")[2].replace(",", ""))
        assert rate > 0, line
