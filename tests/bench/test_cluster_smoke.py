"""The cluster benchmark still runs end to end (tiny sizes; the numbers mean nothing here): one
throwaway node and a throwaway three-node cluster, W1 on each configuration."""

from pathlib import Path

import pytest

from bench.cluster import CONFIGURATIONS
from tests.bench.test_bench_smoke import run_bench
from tests.support.database import admin_url


@pytest.mark.timeout(360)
def test_cluster_smoke_run_prints_every_configuration(tmp_path: Path, amqp_base_url: str) -> None:
    out = tmp_path / "cluster.md"
    done = run_bench(
        amqp_base_url,
        "bench.cluster",
        "--size",
        "smoke",
        "--postgres",
        admin_url(),
        "--out",
        str(out),
    )
    table = out.read_text()
    assert table.strip() == done.stdout.strip()
    for configuration in CONFIGURATIONS:
        row = f"| W1, {configuration} |"
        line = next((line for line in table.splitlines() if line.startswith(row)), None)
        assert line is not None, f"{row!r} missing from:\n{table}"
        assert float(line.split("|")[2].replace(",", "")) > 0, line
