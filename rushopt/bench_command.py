"""``rushopt bench``: compare optimizers on the test problems of :mod:`rushopt.benchmarks`."""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["add_bench_parser"]

_BENCH_DESCRIPTION = """\
Compare optimizers on test problems with known optima. Each optimizer runs on
each problem once per seed, in a plain ask/tell loop in this process (no Redis).
Prints the median final regret (best value minus the optimum), its
interquartile range and the median time per run; with --out, also writes every
evaluation (results.csv), the table (summary.csv) and one plot of regret curves
per problem (regret_<problem>.png, needs matplotlib).
"""


def add_bench_parser(commands: Any) -> None:
    """Add the ``bench`` subcommand to the ``rushopt`` command line."""
    from rushopt.cli import whole_number  # the cli imports this module first

    _positive_int = whole_number(1)
    bench = commands.add_parser(
        "bench",
        help="compare optimizers on test problems",
        description=_BENCH_DESCRIPTION,
        epilog="example:\n  rushopt bench --optimizers random bo --problems branin hartmann6 "
        "--seeds 5 --out bench",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    bench.add_argument(
        "--optimizers",
        nargs="+",
        metavar="NAME",
        help="random, bo, tpe (Optuna's TPE) (default: all three; tpe only if optuna is installed)",
    )
    bench.add_argument(
        "--problems",
        nargs="+",
        metavar="NAME",
        help="branin, hartmann3, hartmann6, ackley, levy, rosenbrock (ackley10: 10-d), "
        "mixed, conditional (default: all)",
    )
    bench.add_argument(
        "--seeds",
        type=_positive_int,
        default=10,
        help="runs per optimizer and problem (default: 10)",
    )
    bench.add_argument(
        "--budget",
        type=_positive_int,
        default=None,
        metavar="N",
        help="evaluations per run (default: 15 * d + 20 for a problem of d parameters)",
    )
    bench.add_argument("--out", metavar="DIR", help="directory for the tables and plots")
    bench.set_defaults(run=_run_bench, parser=bench)


def _run_bench(args: argparse.Namespace) -> int:
    from rushopt.benchmarks.problems import get_problem
    from rushopt.benchmarks.runner import bench_main, resolve_optimizers

    parser: argparse.ArgumentParser = args.parser
    try:
        resolve_optimizers(args.optimizers)
        for name in args.problems or ():
            get_problem(name)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        return bench_main(args.optimizers, args.problems, args.seeds, args.budget, args.out)
    except KeyboardInterrupt:
        print("rushopt bench: interrupted", file=sys.stderr)
        return 130
