"""`python -m bench [--quick|--smoke]`: run every workload, print the table, write results."""

import argparse
import sys
from pathlib import Path

import uvloop

from bench.plan import PLANS
from bench.report import render
from bench.runner import run

RESULTS = Path(__file__).parent / "results" / "latest.md"


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    size = parser.add_mutually_exclusive_group()
    size.add_argument(
        "--quick",
        action="store_const",
        dest="plan",
        const="quick",
        help="a small run (about a minute): smoke-check the numbers",
    )
    size.add_argument(
        "--smoke",
        action="store_const",
        dest="plan",
        const="smoke",
        help="a tiny run for the test suite; the numbers mean nothing",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the table is written")
    parser.add_argument(
        "--keep-logs",
        action="store_true",
        help="keep the processes' logs (always kept when a run fails)",
    )
    args = parser.parse_args()
    plan = PLANS[args.plan or "full"]
    results = uvloop.run(run(plan, log=_log, keep_logs=args.keep_logs))
    table = render(plan, results)
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table)


if __name__ == "__main__":
    main()
