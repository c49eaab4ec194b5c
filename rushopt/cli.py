"""The ``rushopt`` command line: ``rushopt worker``, ``rushopt server`` and ``rushopt bench``.

``rushopt worker`` runs one worker of a network (what
:meth:`~rushopt.core.controller.Rush.create_worker_script` prints);
``rushopt server`` runs a Redis server in the foreground for the controller
and the workers of other machines to share. ``python -m rushopt`` is the same
command. ``rushopt bench`` compares optimizers on test problems with known
optima (:mod:`rushopt.benchmarks`).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
import uuid
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any

from rushopt.bench_command import add_bench_parser
from rushopt.core.controller.worker_script import (
    PASSWORD_ENV,
    TLS_KEY_PASSWORD_ENV,
    split_credentials,
)
from rushopt.status import add_status_parser

if TYPE_CHECKING:
    from rushopt.core.config import RedisConfig
    from rushopt.core.server import RedisServer

__all__ = ["build_parser", "main", "worker_config"]

logger = logging.getLogger("rushopt.cli")

URL_ENV = "RUSHOPT_REDIS_URL"
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_WORKER_DESCRIPTION = """\
Start one worker that joins the network NETWORK_ID on a Redis server, waits for
the start arguments that the controller stores with start_remote_workers() (in
state "pre" meanwhile), then runs the worker loop until it is stopped. Run it
once per worker, on any machine that can reach Redis; the controller's
create_worker_script() returns a ready-made command line.
"""

_WORKER_EPILOG = f"""\
finding Redis:
  The server is given by --url, else by --host/--port/--db (and --tls), else
  by the {URL_ENV} or REDIS_URL environment variable. The password is
  --password, else the one in the URL, else the {PASSWORD_ENV}
  environment variable. Prefer the variable: every user of the machine can
  read a command line (ps). An ACL user name goes in the URL
  (redis://alice@host:6379/0) or in --username. A rediss:// URL or --tls
  connects with TLS; the password of an encrypted --tls-key is read from
  {TLS_KEY_PASSWORD_ENV}.

heartbeat settings:
  --heartbeat-period/--heartbeat-expire apply when the start arguments set no
  heartbeat; start_remote_workers(heartbeat_period=...) wins.

exit status:
  0 when the worker was stopped (terminated), 1 when Redis cannot be reached
  or refuses the credentials, 2 for invalid options, 130 when interrupted.

examples:
  {PASSWORD_ENV}='s3cret' rushopt worker --network-id my-net \\
      --url redis://10.0.0.5:6379/0
  rushopt worker --network-id my-net --host redis.example.org --tls \\
      --tls-ca-cert ca.pem
"""

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


# ------------------------------------------------------------------ argument types
def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {value!r}") from None
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"must be in 1..65535, got {port}")
    return port


def _server_port(value: str) -> int:
    if value.strip() == "0":
        return 0
    return _port(value)


def whole_number(minimum: int, what: str = "a whole number") -> Callable[[str], int]:
    """Return an argparse type accepting integers >= ``minimum`` (``what`` names them)."""

    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not {what}: {value!r}") from None
        if number < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {number}")
        return number

    return parse


_db = whole_number(0, "a database number")
_seconds = whole_number(1, "a whole number of seconds")


def _non_empty(value: str) -> str:
    if not value:
        raise argparse.ArgumentTypeError("must not be empty")
    return value


def _network_id(value: str) -> str:
    from rushopt.core.network import validate_network_id

    try:
        return validate_network_id(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _existing_file(value: str) -> str:
    if not os.path.isfile(value):
        raise argparse.ArgumentTypeError(f"no such file: {value!r}")
    return value


def _existing_dir(value: str) -> str:
    if not os.path.isdir(value):
        raise argparse.ArgumentTypeError(f"no such directory: {value!r}")
    return value


def _log_level(value: str) -> str:
    level = value.upper()
    if level not in _LOG_LEVELS:
        raise argparse.ArgumentTypeError(f"must be one of {', '.join(_LOG_LEVELS)}, got {value!r}")
    return level


# ------------------------------------------------------------------ parser
def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of the ``rushopt`` command.

    Returns
    -------
    argparse.ArgumentParser
        The parser, with the subcommands ``worker``, ``server``, ``bench`` and ``status``.
    """
    parser = argparse.ArgumentParser(prog="rushopt", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_worker_parser(commands)
    _add_server_parser(commands)
    add_bench_parser(commands)
    add_status_parser(commands)
    return parser


def _add_worker_parser(commands: Any) -> None:
    worker = commands.add_parser(
        "worker",
        help="run one worker of a network",
        description=_WORKER_DESCRIPTION,
        epilog=_WORKER_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    worker.add_argument(
        "--network-id", required=True, type=_network_id, help="the network to join (required)"
    )
    worker.add_argument(
        "--worker-id", type=_non_empty, default=None, help="the worker's id (default: a new uuid)"
    )
    worker.add_argument(
        "--log-level",
        type=_log_level,
        default="WARNING",
        metavar="LEVEL",
        help="level of the worker's own log on stderr (default: WARNING)",
    )

    conn = worker.add_argument_group("connection")
    conn.add_argument(
        "--url",
        default=None,
        help=f"Redis URL, redis://[[user]:password@]host:port/db, rediss://... (TLS) or "
        f"unix:///path.sock (default: ${URL_ENV}, then $REDIS_URL)",
    )
    conn.add_argument(
        "--host",
        type=_non_empty,
        default=None,
        help="Redis host, instead of --url (default: 127.0.0.1)",
    )
    conn.add_argument(
        "--port", type=_port, default=None, help="Redis port, instead of --url (default: 6379)"
    )
    conn.add_argument(
        "--db", type=_db, default=None, help="Redis database number, instead of --url (default: 0)"
    )
    conn.add_argument("--username", type=_non_empty, default=None, help="Redis ACL user name")
    conn.add_argument(
        "--password",
        default=None,
        help=f"Redis password (default: from the URL, then ${PASSWORD_ENV}; "
        "prefer the variable, since ps shows command lines)",
    )

    tls = worker.add_argument_group("TLS")
    tls.add_argument(
        "--tls", action="store_true", help="connect with TLS (same as a rediss:// URL)"
    )
    tls.add_argument(
        "--tls-ca-cert",
        type=_existing_file,
        metavar="FILE",
        help="CA certificates to verify the server with (ssl_ca_certs)",
    )
    tls.add_argument(
        "--tls-ca-dir",
        type=_existing_dir,
        metavar="DIR",
        help="directory of CA certificates (ssl_ca_path)",
    )
    tls.add_argument(
        "--tls-cert", type=_existing_file, metavar="FILE", help="client certificate (ssl_certfile)"
    )
    tls.add_argument(
        "--tls-key",
        type=_existing_file,
        metavar="FILE",
        help=f"client private key (ssl_keyfile); its password, if any, "
        f"from ${TLS_KEY_PASSWORD_ENV}",
    )
    tls.add_argument(
        "--tls-verify",
        choices=("required", "optional", "none"),
        default=None,
        help="server certificate check (ssl_cert_reqs, default: required)",
    )
    tls.add_argument(
        "--tls-no-check-hostname",
        action="store_true",
        help="do not match the server's certificate against its host name",
    )

    beat = worker.add_argument_group("heartbeat")
    beat.add_argument(
        "--heartbeat-period",
        type=_seconds,
        default=None,
        metavar="SECONDS",
        help="seconds between heartbeats, if the start arguments set none",
    )
    beat.add_argument(
        "--heartbeat-expire",
        type=_seconds,
        default=None,
        metavar="SECONDS",
        help="seconds until a silent worker counts as lost (default: 3 x period)",
    )

    # used by start_local_workers only
    worker.add_argument("--local", action="store_true", help=argparse.SUPPRESS)
    worker.add_argument("--start-args-id", default=None, help=argparse.SUPPRESS)
    worker.add_argument("--supervise-fd", type=int, default=None, help=argparse.SUPPRESS)
    worker.set_defaults(run=_run_worker, parser=worker)


def _add_server_parser(commands: Any) -> None:
    server = commands.add_parser(
        "server",
        help="run a Redis server in the foreground",
        description=_SERVER_DESCRIPTION,
        epilog=_SERVER_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    server.add_argument(
        "--bind",
        type=_non_empty,
        default="127.0.0.1",
        help="address to listen on (default: 127.0.0.1, this machine only)",
    )
    server.add_argument(
        "--port",
        type=_server_port,
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
        type=_log_level,
        default="WARNING",
        metavar="LEVEL",
        help="level of rushopt's own log on stderr (default: WARNING)",
    )
    server.set_defaults(run=_run_server, parser=server)


# ------------------------------------------------------------------ worker
def worker_config(args: argparse.Namespace, parser: argparse.ArgumentParser) -> RedisConfig:
    """Build the :class:`~rushopt.core.config.RedisConfig` of ``rushopt worker`` options.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed ``rushopt worker`` options.
    parser : argparse.ArgumentParser
        The ``worker`` parser, to report errors with (exit code 2).

    Returns
    -------
    RedisConfig
        How the worker connects: the URL without credentials, and the user
        name, password and ``ssl_*`` settings as keyword arguments.
    """
    from rushopt.core.config import RedisConfig

    by_parts = args.host is not None or args.port is not None or args.db is not None
    if args.url is not None and by_parts:
        parser.error("--host, --port and --db cannot be combined with --url")
    url = args.url
    if url is None and not by_parts:
        from_env = os.environ.get(URL_ENV) or RedisConfig.from_env()
        url = from_env.url if isinstance(from_env, RedisConfig) else from_env
        if url is None:
            parser.error(
                f"no Redis server given: pass --url or --host/--port, or set {URL_ENV} or REDIS_URL"
            )
    if url is None:
        host = args.host or "127.0.0.1"
        host = f"[{host}]" if ":" in host and not host.startswith("[") else host
        url = f"redis://{host}:{args.port or 6379}/{args.db or 0}"
    try:
        RedisConfig(url)
    except ValueError as exc:
        parser.error(f"argument --url: {exc}")
    scheme = url.split("://", 1)[0]
    if args.tls:
        if scheme == "unix":
            parser.error("--tls needs a redis:// or rediss:// URL, not unix://")
        url = "rediss://" + url.split("://", 1)[1]
    tls_values = {
        "ssl_ca_certs": ("--tls-ca-cert", args.tls_ca_cert),
        "ssl_ca_path": ("--tls-ca-dir", args.tls_ca_dir),
        "ssl_certfile": ("--tls-cert", args.tls_cert),
        "ssl_keyfile": ("--tls-key", args.tls_key),
        "ssl_cert_reqs": ("--tls-verify", args.tls_verify),
    }
    if args.tls_no_check_hostname:
        tls_values["ssl_check_hostname"] = ("--tls-no-check-hostname", False)
    kwargs: dict[str, Any] = {}
    for name, (option, value) in tls_values.items():
        if value is None:
            continue
        if not url.startswith("rediss://"):
            parser.error(f"{option} needs TLS: pass --tls or a rediss:// URL")
        kwargs[name] = value
    key_password = os.environ.pop(TLS_KEY_PASSWORD_ENV, None)
    if key_password and url.startswith("rediss://"):
        kwargs["ssl_password"] = key_password

    # redis-py lets the URL win over keyword arguments, so the credentials leave the URL
    url, url_username, url_password = split_credentials(url)
    env_password = os.environ.pop(PASSWORD_ENV, None)  # not for the worker's children
    username = args.username or url_username
    password = args.password or url_password or env_password or None
    if username:
        kwargs["username"] = username
    if password:
        kwargs["password"] = password
    return RedisConfig(url, **kwargs)


def _run_worker(args: argparse.Namespace) -> int:
    from rushopt.core.config import check_heartbeat
    from rushopt.core.worker.process import load_config_from_env, watch_parent
    from rushopt.core.worker.start import start_worker

    parser: argparse.ArgumentParser = args.parser
    if args.supervise_fd is not None:
        watch_parent(args.supervise_fd)
    try:
        check_heartbeat(args.heartbeat_period, args.heartbeat_expire)
    except ValueError as exc:
        parser.error(f"--heartbeat-expire/--heartbeat-period: {exc}")
    config = load_config_from_env()  # a local worker gets its controller's config
    if config is None:
        config = worker_config(args, parser)
    logging.basicConfig(level=args.log_level, format=_LOG_FORMAT, stream=sys.stderr)
    worker_id = args.worker_id or str(uuid.uuid4())
    logger.info("worker %s joins network %r at %s", worker_id, args.network_id, config.redacted_url)
    try:
        start_worker(
            args.network_id,
            worker_id=worker_id,
            remote=not args.local,
            config=config,
            start_args_id=args.start_args_id,
            heartbeat_period=args.heartbeat_period,
            heartbeat_expire=args.heartbeat_expire,
        )
    except ConnectionError as exc:  # Redis unreachable or credentials refused
        print(f"rushopt worker: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"rushopt worker: worker {worker_id} interrupted", file=sys.stderr)
        return 130
    logger.info("worker %s exits", worker_id)
    # The worker is marked terminated and its log flushed; skip the interpreter's
    # teardown (garbage-collecting scipy, sklearn, ...), which costs a worker about
    # 0.6 s and delays every controller that waits for its workers to exit.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


# ------------------------------------------------------------------ server
def _public_host(bind: str) -> str:
    """Return the host name that other machines would use to reach ``bind``."""
    if bind in ("0.0.0.0", "::"):
        return socket.getfqdn() or "<this-machine>"
    return f"[{bind}]" if ":" in bind else bind


def _run_server(args: argparse.Namespace) -> int:
    from rushopt.core.server import RedisServer
    from rushopt.exceptions import ConfigError, RushError

    parser: argparse.ArgumentParser = args.parser
    logging.basicConfig(level=args.log_level, format=_LOG_FORMAT, stream=sys.stderr)
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
            print(f"rushopt server: error: {exc}", file=sys.stderr)
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


# ------------------------------------------------------------------ main
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
