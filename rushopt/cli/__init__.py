"""The ``rushopt`` command line: ``worker``, ``server``, ``bench``, ``status`` and ``dashboard``.

``rushopt worker`` runs one worker of a network (what
:meth:`~rushopt.core.controller.Rush.create_worker_script` prints);
``rushopt server`` runs a Redis server in the foreground for the controller
and the workers of other machines to share. ``python -m rushopt`` is the same
command. ``rushopt bench`` compares optimizers on test problems with known
optima (:mod:`rushopt.benchmarks`). ``rushopt status`` shows what a network's
workers and tasks are doing, or lists the networks on a server.
``rushopt dashboard`` serves a live web page of the networks on a server.

Output into a closed pipe (``rushopt status | head``) ends the command quietly
with exit code 1, without a ``BrokenPipeError`` traceback.

Each subcommand lives in its own module (:mod:`rushopt.cli.worker`,
:mod:`rushopt.cli.server`, :mod:`rushopt.cli.bench`, :mod:`rushopt.cli.status`,
:mod:`rushopt.cli.dashboard`),
with the argument types they share in :mod:`rushopt.cli.options`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys

from rushopt.cli.bench import add_bench_parser
from rushopt.cli.dashboard import add_dashboard_parser
from rushopt.cli.options import URL_ENV, whole_number
from rushopt.cli.server import add_server_parser
from rushopt.cli.status import add_status_parser
from rushopt.cli.worker import add_worker_parser, worker_config

__all__ = ["URL_ENV", "build_parser", "main", "whole_number", "worker_config"]

_DESCRIPTION = """\
rushopt: parallel and distributed hyperparameter optimization on Redis. The
controller (rushopt.Rush, rushopt.tune) runs in Python; these commands run
workers and a Redis server, inspect and watch networks and compare optimizers.
"""

_EPILOG = """\
Run 'rushopt COMMAND --help' for the options of a command.
"""


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keep each command's help on its name's line.

    argparse indents the names of subcommands one level deeper than it
    counts when it places the help column, so a name as long as
    ``dashboard`` pushed its help to a line of its own.
    """

    def add_argument(self, action: argparse.Action) -> None:
        super().add_argument(action)
        if action.help is argparse.SUPPRESS:
            return
        for sub in self._iter_indented_subactions(action):  # indented while it yields
            width = len(self._format_action_invocation(sub)) + self._current_indent
            self._action_max_length = max(self._action_max_length, width)


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of the ``rushopt`` command.

    Returns
    -------
    argparse.ArgumentParser
        The parser, with ``--version`` and the subcommands ``worker``, ``server``,
        ``bench``, ``status`` and ``dashboard``.

    Examples
    --------
    >>> args = build_parser().parse_args(["server", "--port", "0"])
    >>> args.command, args.port, args.bind
    ('server', 0, '127.0.0.1')
    """
    from rushopt import __version__

    parser = argparse.ArgumentParser(
        prog="rushopt",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=_HelpFormatter,
    )
    parser.add_argument(
        "--version", action="version", version=f"rushopt {__version__}", help="print the version"
    )
    commands = parser.add_subparsers(
        title="commands", dest="command", required=True, metavar="COMMAND"
    )
    add_worker_parser(commands)
    add_server_parser(commands)
    add_bench_parser(commands)
    add_status_parser(commands)
    add_dashboard_parser(commands)
    return parser


_prebuilt: argparse.ArgumentParser | None = None

#: The shape of the command line a controller gives its local workers (see
#: :func:`rushopt.core.controller.local.spawn_local_workers`).
_LOCAL_WORKER_ARGV = (
    "worker",
    "--network-id",
    "n",
    "--worker-id",
    "w",
    "--start-args-id",
    "s",
    "--local",
    "--supervise-fd",
    "3",
)


def prebuild_parser() -> None:
    """Build the parser now and keep it for every later :func:`main` call of this process.

    The worker zygote calls this before it forks: its workers then parse
    their arguments with the parser they inherit instead of building one
    each (argparse translates every help text through :mod:`gettext`, which
    looks for catalogs on disk: 2-3 ms per worker).
    """
    global _prebuilt
    _prebuilt = build_parser()
    # argparse compiles a regular expression per pattern of arguments as it first parses
    # them; parsing a local worker's command line now leaves them in the forks' re cache
    _prebuilt.parse_args(_LOCAL_WORKER_ARGV)


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
        unreachable, or output into a closed pipe), 2 on invalid arguments,
        130 when interrupted.
    """
    try:
        try:
            args = (_prebuilt or build_parser()).parse_args(argv)
            return int(args.run(args))
        finally:
            if sys.stdout is not None:
                sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
    except BrokenPipeError:
        _drop_stdout()
        return 1


def _drop_stdout() -> None:
    """Point stdout at the null device, so the interpreter's last flush cannot fail again."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
