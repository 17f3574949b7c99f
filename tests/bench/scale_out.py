"""What the scale-out benches' smoke tests share (bench.scaling, bench.cluster): a run at the
smoke size on the tests' PostgreSQL, and the check that each configuration measured a rate."""

from collections.abc import Iterable
from pathlib import Path

from tests.bench.test_bench_smoke import run_bench
from tests.support.database import admin_url


def smoke_table(amqp_base_url: str, module: str, out: Path) -> str:
    """The table `python -m <module> --size smoke` wrote to `out`, once it is what it printed."""
    done = run_bench(
        amqp_base_url, module, "--size", "smoke", "--postgres", admin_url(), "--out", str(out)
    )
    table = out.read_text()
    assert table.strip() == done.stdout.strip()
    return table


def assert_every_row_has_a_rate(table: str, rows: Iterable[str]) -> None:
    """Each of `rows` (a first cell) is in `table`, with jobs/s above zero in its second."""
    for row in rows:
        line = next((line for line in table.splitlines() if line.startswith(f"| {row} |")), None)
        assert line is not None, f"{row!r} missing from:\n{table}"
        assert float(line.split("|")[2].replace(",", "")) > 0, line
