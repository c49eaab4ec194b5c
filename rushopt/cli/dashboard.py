"""``rushopt dashboard``: serve a live web page of the networks on a Redis server.

The page (:mod:`rushopt.dashboard`) lists the networks on the server and shows
one at a time: its workers (state, host, heartbeat, tasks done), its tasks by
state, the optimization history with the best value so far, parallel
coordinates of the arguments and the result, the failures with their messages
and tracebacks, and the run's metadata (``tune``'s optimizer, budget and
metric). It polls a JSON API under ``/api/`` and updates without reloading.

It needs the ``dashboard`` extra (``pip install 'rushopt[dashboard]'``:
Starlette and uvicorn); without it the command says so in one line.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from typing import Any

from rushopt.cli.options import LOG_FORMAT, URL_ENV, error_message, non_empty, server_port
from rushopt.core.controller.worker_script import PASSWORD_ENV

__all__ = ["DEFAULT_PORT", "RECONNECT_TIMEOUT_S", "add_dashboard_parser"]

DEFAULT_PORT = 8265
"""Port the dashboard listens on by default."""

RECONNECT_TIMEOUT_S = 2.0
"""Seconds a request retries a broken Redis connection before the page says Redis is down."""

_INSTALL = "pip install 'rushopt[dashboard]'"

_DESCRIPTION = """\
Serve a live web page of the networks on a Redis server: per network its
workers (state, host, heartbeat, tasks done), tasks by state, the
optimization history with the best value so far, parallel coordinates,
failures with their messages and tracebacks, and the run's metadata
(optimizer, budget, metric of rushopt.tune). The page updates as results
arrive; its script and style ship with rushopt (no internet needed).

A JSON API backs it: /api/networks, /api/networks/ID,
/api/networks/ID/history?after=N (finished tasks from row N on) and
/api/networks/ID/failures?after=S. Each refresh reads only what changed in
Redis: its cost does not grow with the number of finished tasks.
"""

_EPILOG = f"""\
The page has no login: it listens on 127.0.0.1 unless --bind says otherwise.
Needs the dashboard extra: {_INSTALL}

example:
  rushopt dashboard --url redis://127.0.0.1:6379/0 --port 8265
"""


def add_dashboard_parser(commands: Any) -> None:
    """Add the ``dashboard`` subcommand to the ``rushopt`` command line.

    Parameters
    ----------
    commands : argparse subparsers
        What :meth:`argparse.ArgumentParser.add_subparsers` returned.
    """
    dashboard = commands.add_parser(
        "dashboard",
        help="serve a live web page of the networks on a server",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    dashboard.add_argument(
        "--url",
        default=None,
        help=f"Redis URL (default: ${URL_ENV}, then $REDIS_URL); the password may come from "
        f"${PASSWORD_ENV}",
    )
    dashboard.add_argument(
        "--port",
        type=server_port,
        default=DEFAULT_PORT,
        help=f"port of the page; 0 picks a free one (default: {DEFAULT_PORT})",
    )
    dashboard.add_argument(
        "--bind",
        type=non_empty,
        default="127.0.0.1",
        help="address to listen on (default: 127.0.0.1, this machine only)",
    )
    dashboard.set_defaults(run=_run_dashboard, parser=dashboard)


def _listen(bind: str, port: int) -> socket.socket:
    """Open the listening socket, so a taken port fails here with a clear message."""
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((bind, port))
        sock.listen(128)
    except BaseException:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _run_dashboard(args: argparse.Namespace) -> int:
    """Serve the dashboard until SIGINT or SIGTERM.

    uvicorn shuts the server down gracefully on either signal; then SIGINT
    ends the command with exit code 130 and SIGTERM ends it as SIGTERM does.
    Exit code 1: the extra is missing or the port cannot be listened on (one
    line on stderr each); 2: no URL or a bad one.
    """
    parser: argparse.ArgumentParser = args.parser
    try:
        import starlette  # noqa: F401
        import uvicorn
    except ImportError as exc:
        print(
            f"rushopt dashboard: error: the dashboard needs {exc.name or 'starlette and uvicorn'}:"
            f" {_INSTALL}",
            file=sys.stderr,
        )
        return 1
    from rushopt.core.config import RedisConfig
    from rushopt.dashboard.app import create_app
    from rushopt.dashboard.registry import Dashboard

    url = args.url or os.environ.get(URL_ENV) or os.environ.get("REDIS_URL")
    if not url:
        parser.error(f"no Redis server given: pass --url, or set {URL_ENV} or REDIS_URL")
    password = os.environ.get(PASSWORD_ENV)
    extra: dict[str, Any] = {"password": password} if password else {}
    try:
        config = RedisConfig(url, reconnect_timeout=RECONNECT_TIMEOUT_S, **extra)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        sock = _listen(args.bind, args.port)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        print(
            f"rushopt dashboard: error: cannot listen on {args.bind} port {args.port}: {reason}",
            file=sys.stderr,
        )
        return 1
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, stream=sys.stderr)
    dashboard = Dashboard(config)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"rushopt dashboard: http://{shown}:{port}/ shows {config.redacted_url}", flush=True)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(dashboard), log_level="warning", access_log=False, ws="none", lifespan="off"
        )
    )
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # uvicorn's own failures, in one line
        print(error_message("dashboard", exc), file=sys.stderr)
        return 1
    finally:
        dashboard.close()
        sock.close()
    return 0
