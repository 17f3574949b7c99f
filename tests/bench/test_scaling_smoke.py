"""The scale-out benchmark still runs end to end (tiny sizes; the numbers mean nothing here)."""

from pathlib import Path

import pytest

from tests.bench.scale_out import assert_every_row_has_a_rate, smoke_table

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
    table = smoke_table(amqp_base_url, "bench.scaling", tmp_path / "scaling.md")
    assert_every_row_has_a_rate(table, ROWS)
