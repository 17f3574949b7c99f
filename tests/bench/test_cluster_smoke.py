"""The cluster benchmark still runs end to end (tiny sizes; the numbers mean nothing here): one
throwaway node and a throwaway three-node cluster, W1 on each configuration."""

from pathlib import Path

import pytest

from bench.cluster import CONFIGURATIONS
from tests.bench.scale_out import assert_every_row_has_a_rate, smoke_table


@pytest.mark.timeout(360)
def test_cluster_smoke_run_prints_every_configuration(tmp_path: Path, amqp_base_url: str) -> None:
    table = smoke_table(amqp_base_url, "bench.cluster", tmp_path / "cluster.md")
    assert_every_row_has_a_rate(table, (f"W1, {c}" for c in CONFIGURATIONS))
