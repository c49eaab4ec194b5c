"""The ``rushopt`` command line: ``rushopt worker``, ``rushopt server`` and ``rushopt bench``.

``rushopt worker`` runs one worker of a network (what
:meth:`~rushopt.core.controller.Rush.create_worker_script` prints);
``rushopt server`` runs a Redis server in the foreground for the controller
and the workers of other machines to share. ``python -m rushopt`` is the same
command. ``rushopt bench`` compares optimizers on test problems with known
optima (:mod:`rushopt.benchmarks`). ``rushopt status`` shows what a network's
workers and tasks are doing.

Each subcommand lives in its own module (:mod:`rushopt.cli.worker`,
:mod:`rushopt.cli.server`, :mod:`rushopt.cli.bench`, :mod:`rushopt.cli.status`),
with the argument types they share in :mod:`rushopt.cli.options`.
"""

from __future__ import annotations

import argparse

from rushopt.cli.bench import add_bench_parser
from rushopt.cli.options import URL_ENV, whole_number
from rushopt.cli.server import add_server_parser
from rushopt.cli.status import add_status_parser
from rushopt.cli.worker import add_worker_parser, worker_config

__all__ = ["URL_ENV", "build_parser", "main", "whole_number", "worker_config"]


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of the ``rushopt`` command.

    Returns
    -------
    argparse.ArgumentParser
        The parser, with the subcommands ``worker``, ``server``, ``bench`` and ``status``.

    Examples
    --------
    >>> args = build_parser().parse_args(["server", "--port", "0"])
    >>> args.command, args.port, args.bind
    ('server', 0, '127.0.0.1')
    """
    parser = argparse.ArgumentParser(prog="rushopt", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_worker_parser(commands)
    add_server_parser(commands)
    add_bench_parser(commands)
    add_status_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``rushopt`` command line.

    Parameters
    ----------
    argv : list of str, optional
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit code: 0 on success, 1 on a runtime error (e.g. Redis
        unreachable), 2 on invalid arguments, 130 when interrupted.
    """
    args = build_parser().parse_args(argv)
    return int(args.run(args))
