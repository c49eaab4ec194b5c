"""``rushopt server``: run a Redis server in the foreground for several machines to share.

The server is the redis-server that rushopt embeds
(:class:`~rushopt.core.server.RedisServer`); it runs until SIGINT or SIGTERM
and prints how a controller and workers connect to it.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
from types import FrameType
from typing import TYPE_CHECKING, Any

from rushopt.cli.options import LOG_FORMAT, error_message, log_level, non_empty, server_port
from rushopt.core.controller.worker_script import PASSWORD_ENV

if TYPE_CHECKING:
    from rushopt.core.server import RedisServer

__all__ = ["add_server_parser"]

_SERVER_DESCRIPTION = """\
Run a Redis server in the foreground (the redis-server that rushopt embeds)
until SIGINT (Ctrl-C) or SIGTERM, for a controller and workers on several
machines to share. It prints the URL to connect with (password redacted).
"""

_SERVER_EPILOG = f"""\
security:
  Listening beyond loopback (--bind 0.0.0.0 or a network address) requires a
  password: --password, or better the {PASSWORD_ENV} environment variable
  (a command line is visible to every user of the machine). Traffic is not
  encrypted; on an untrusted network use a tunnel (ssh -L, WireGuard) or a
  TLS-enabled Redis.

example:
  {PASSWORD_ENV}='s3cret' rushopt server --bind 0.0.0.0 --port 6379 --dir ./redis --persist
"""


def add_server_parser(commands: Any) -> None:
    """Add the ``server`` subcommand to the ``rushopt`` command line.

    Parameters
    ----------
    commands : argparse subparsers
        What :meth:`argparse.ArgumentParser.add_subparsers` returned.
    """
    server = commands.add_parser(
        "server",
        help="run a Redis server in the foreground",
        description=_SERVER_DESCRIPTION,
        epilog=_SERVER_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    server.add_argument(
        "--bind",
        type=non_empty,
        default="127.0.0.1",
        help="address to listen on (default: 127.0.0.1, this machine only)",
    )
    server.add_argument(
        "--port",
        type=server_port,
        default=6379,
        help="port to listen on; 0 picks a free one (default: 6379)",
    )
    server.add_argument(
        "--password",
        default=None,
        help=f"password clients must send (default: ${PASSWORD_ENV}); "
        "required unless --bind is a loopback address",
    )
    server.add_argument(
        "--dir",
        default=None,
        help="directory for data and log files (default: a temporary one, removed at exit)",
    )
    server.add_argument(
        "--persist",
        action="store_true",
        help="keep data across restarts (append-only file and snapshots in --dir)",
    )
    server.add_argument(
        "--log-level",
        type=log_level,
        default="WARNING",
        metavar="LEVEL",
        help="level of rushopt's own log on stderr (default: WARNING)",
    )
    server.set_defaults(run=_run_server, parser=server)


def _public_host(bind: str) -> str:
    """Return the host name that other machines would use to reach ``bind``."""
    if bind in ("0.0.0.0", "::"):
        return socket.getfqdn() or "<this-machine>"
    return f"[{bind}]" if ":" in bind else bind


def _run_server(args: argparse.Namespace) -> int:
    from rushopt.core.server import RedisServer
    from rushopt.exceptions import ConfigError, RushError

    parser: argparse.ArgumentParser = args.parser
    logging.basicConfig(level=args.log_level, format=LOG_FORMAT, stream=sys.stderr)
    password = args.password or os.environ.pop(PASSWORD_ENV, None) or None
    if args.persist and args.dir is None:
        parser.error("--persist needs --dir (where Redis keeps its data files)")
    try:
        server = RedisServer(
            port=args.port or None,
            bind=args.bind,
            password=password,
            dir=args.dir,
            persist=args.persist,
        )
    except ConfigError as exc:
        if password is None and "password" in str(exc):
            parser.error(
                f"refusing to listen on {args.bind} (not a loopback address) without a "
                f"password: set {PASSWORD_ENV} (or pass --password), or --bind 127.0.0.1"
            )
        parser.error(str(exc))

    stop = threading.Event()
    received: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            server.start()
        except RushError as exc:
            print(error_message("server", exc), file=sys.stderr)
            return 1
        try:
            _print_server_banner(server, password)
            while not stop.wait(0.5):
                if not server.running:
                    print("rushopt server: error: redis-server exited", file=sys.stderr)
                    return 1
        finally:
            server.stop()
        name = signal.Signals(received[0]).name if received else "a signal"
        print(f"rushopt server: stopped (received {name})", flush=True)
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _print_server_banner(server: RedisServer, password: str | None) -> None:
    from rushopt.core.config import redact_url

    host = _public_host(server.bind)
    auth = ":<password>@" if password else ""
    env = f"{PASSWORD_ENV}='<password>' " if password else ""
    lines = [
        f"rushopt server: redis-server (pid {server.pid}) listening on {server.bind}:{server.port}",
        f"url: {redact_url(server.url)}",
        "",
        "connect a controller:",
        f'  rush = Rush(network_id="my-net", config="redis://{auth}{host}:{server.port}/0")',
        "start workers (run rush.create_worker_script() for a ready-made line):",
        f"  {env}python -m rushopt worker --network-id my-net --url redis://{host}:{server.port}/0",
    ]
    if server.bind in ("127.0.0.1", "::1", "localhost"):
        lines.append("only this machine can connect; for others: --bind <address> with a password")
    lines.append("stop with Ctrl-C or SIGTERM")
    print("\n".join(lines), flush=True)
