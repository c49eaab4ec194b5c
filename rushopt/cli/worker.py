"""``rushopt worker``: run one worker of a network, on any machine that can reach Redis.

This is the command that :meth:`~rushopt.core.controller.Rush.create_worker_script`
prints and that local workers run. :func:`worker_config` turns its connection
and TLS options into a :class:`~rushopt.core.config.RedisConfig`.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rushopt.cli.options import (
    LOG_FORMAT,
    URL_ENV,
    db_number,
    duration,
    error_message,
    existing_dir,
    existing_file,
    log_level,
    network_id,
    non_empty,
    port,
    seconds,
)
from rushopt.core.controller.worker_script import (
    PASSWORD_ENV,
    TLS_KEY_PASSWORD_ENV,
    split_credentials,
)

if TYPE_CHECKING:
    from rushopt.core.config import RedisConfig

__all__ = ["add_worker_parser", "worker_config"]

logger = logging.getLogger("rushopt.cli")

_WORKER_DESCRIPTION = """\
Start one worker that joins the network NETWORK_ID on a Redis server, waits for
the start arguments that the controller stores with start_remote_workers() (in
state "pre" meanwhile), then runs the worker loop until it is stopped. Run it
once per worker, on any machine that can reach Redis; the controller's
create_worker_script() returns a ready-made command line. With --pool NAME
instead of --network-id the worker belongs to a pool: it waits until a network
claims it, serves that network until it ends, and goes back to the pool.
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
  rushopt worker --pool gpu-box --url redis+cluster://10.0.0.5:7000
"""


# ------------------------------------------------------------------ parser
def add_worker_parser(commands: Any) -> None:
    """Add the ``worker`` subcommand to the ``rushopt`` command line.

    Parameters
    ----------
    commands : argparse subparsers
        What :meth:`argparse.ArgumentParser.add_subparsers` returned.
    """
    worker = commands.add_parser(
        "worker",
        help="run one worker of a network",
        description=_WORKER_DESCRIPTION,
        epilog=_WORKER_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    target = worker.add_mutually_exclusive_group(required=True)
    target.add_argument("--network-id", type=network_id, help="the network to join")
    target.add_argument(
        "--pool",
        type=network_id,
        metavar="NAME",
        help="join the worker pool NAME instead: serve whichever network claims the worker "
        "(tune(pool=NAME), Rush.claim_pool_workers), one after another, until stopped",
    )
    worker.add_argument(
        "--worker-id", type=non_empty, default=None, help="the worker's id (default: a new uuid)"
    )
    worker.add_argument(
        "--log-level",
        type=log_level,
        default="WARNING",
        metavar="LEVEL",
        help="level of the worker's own log on stderr (default: WARNING)",
    )
    _add_connection_options(worker)
    _add_tls_options(worker)
    _add_heartbeat_options(worker)
    _add_fault_options(worker)
    # used by start_local_workers only
    worker.add_argument("--local", action="store_true", help=argparse.SUPPRESS)
    worker.add_argument("--start-args-id", default=None, help=argparse.SUPPRESS)
    worker.add_argument("--supervise-fd", type=int, default=None, help=argparse.SUPPRESS)
    worker.set_defaults(run=_run_worker, parser=worker)


def _add_connection_options(worker: argparse.ArgumentParser) -> None:
    conn = worker.add_argument_group("connection")
    conn.add_argument(
        "--url",
        default=None,
        help=f"Redis URL, redis://[[user]:password@]host:port/db, rediss://... (TLS), "
        f"unix:///path.sock, or redis+cluster://host:port for a Redis Cluster "
        f"(default: ${URL_ENV}, then $REDIS_URL)",
    )
    conn.add_argument(
        "--host",
        type=non_empty,
        default=None,
        help="Redis host, instead of --url (default: 127.0.0.1)",
    )
    conn.add_argument(
        "--port", type=port, default=None, help="Redis port, instead of --url (default: 6379)"
    )
    conn.add_argument(
        "--db",
        type=db_number,
        default=None,
        help="Redis database number, instead of --url (default: 0)",
    )
    conn.add_argument("--username", type=non_empty, default=None, help="Redis ACL user name")
    conn.add_argument(
        "--password",
        default=None,
        help=f"Redis password (default: from the URL, then ${PASSWORD_ENV}; "
        "prefer the variable, since ps shows command lines)",
    )


def _add_tls_options(worker: argparse.ArgumentParser) -> None:
    tls = worker.add_argument_group("TLS")
    tls.add_argument(
        "--tls", action="store_true", help="connect with TLS (same as a rediss:// URL)"
    )
    tls.add_argument(
        "--tls-ca-cert",
        type=existing_file,
        metavar="FILE",
        help="CA certificates to verify the server with (ssl_ca_certs)",
    )
    tls.add_argument(
        "--tls-ca-dir",
        type=existing_dir,
        metavar="DIR",
        help="directory of CA certificates (ssl_ca_path)",
    )
    tls.add_argument(
        "--tls-cert", type=existing_file, metavar="FILE", help="client certificate (ssl_certfile)"
    )
    tls.add_argument(
        "--tls-key",
        type=existing_file,
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


def _add_fault_options(worker: argparse.ArgumentParser) -> None:
    faults = worker.add_argument_group("outages and preemption")
    faults.add_argument(
        "--reconnect-timeout",
        type=duration,
        default=None,
        metavar="SECONDS",
        help="seconds to keep reconnecting when the connection to Redis breaks, e.g. a "
        "Redis restart (default 60; 0: exit at once)",
    )
    faults.add_argument(
        "--wait-for-redis",
        type=duration,
        default=0.0,
        metavar="SECONDS",
        help="wait up to SECONDS for Redis to accept connections before joining (for batch "
        "jobs that may start before Redis)",
    )
    faults.add_argument(
        "--grace",
        type=duration,
        default=None,
        metavar="SECONDS",
        help="on SIGTERM (preemption), seconds the running task may take to finish before "
        "it is given back to the queue without counting a retry (default 10); the worker "
        "then exits 0",
    )


def _add_heartbeat_options(worker: argparse.ArgumentParser) -> None:
    beat = worker.add_argument_group("heartbeat")
    beat.add_argument(
        "--heartbeat-period",
        type=seconds,
        default=None,
        metavar="SECONDS",
        help="seconds between heartbeats, if the start arguments set none",
    )
    beat.add_argument(
        "--heartbeat-expire",
        type=seconds,
        default=None,
        metavar="SECONDS",
        help="seconds until a silent worker counts as lost (default: 3 x period)",
    )


# ------------------------------------------------------------------ connection
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
        tls_scheme = "rediss+cluster" if scheme.endswith("+cluster") else "rediss"
        url = f"{tls_scheme}://" + url.split("://", 1)[1]
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
        if not url.startswith(("rediss://", "rediss+cluster://")):
            parser.error(f"{option} needs TLS: pass --tls or a rediss:// URL")
        kwargs[name] = value
    key_password = os.environ.pop(TLS_KEY_PASSWORD_ENV, None)
    if key_password and url.startswith(("rediss://", "rediss+cluster://")):
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
    if args.reconnect_timeout is not None:
        kwargs["reconnect_timeout"] = args.reconnect_timeout
    return RedisConfig(url, **kwargs)


# ------------------------------------------------------------------ run
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
    logging.basicConfig(level=args.log_level, format=LOG_FORMAT, stream=sys.stderr)
    # a local worker (re)started during a Redis outage waits as its controller would
    wait = args.wait_for_redis or (config.reconnect_timeout if args.local else 0.0)
    if wait > 0 and not _wait_for_redis(config, wait):
        print(
            f"rushopt worker: error: Redis at {config.redacted_url} did not accept connections "
            f"within {wait:g} seconds (--wait-for-redis)",
            file=sys.stderr,
        )
        return 1
    worker_id = args.worker_id or str(uuid.uuid4())
    if args.pool is not None:
        return _run_pooled(args, config, worker_id)
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
            grace=args.grace,
            on_wait=_announce_wait(args, config, worker_id),
        )
    except ConnectionError as exc:  # Redis unreachable or credentials refused
        print(error_message("worker", exc), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"rushopt worker: worker {worker_id} interrupted", file=sys.stderr)
        return 130
    logger.info("worker %s exits", worker_id)
    # The worker is marked terminated and its log flushed; skip the interpreter's
    # teardown (garbage-collecting scipy, sklearn, ...), which costs a worker about
    # 0.6 s and delays every controller that waits for its workers to exit.
    _finalize_multiprocessing()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _finalize_multiprocessing() -> None:
    """Run the exit hook of multiprocessing, which ``os._exit`` would skip.

    A worker that ran its tasks in child processes (``isolate=True``,
    ``worker_loop_subprocess``) started a forkserver, whose socket lives in a
    ``pymp-*`` temporary directory; the hook stops the forkserver and removes
    that directory.
    """
    util = sys.modules.get("multiprocessing.util")
    exit_function = getattr(util, "_exit_function", None)
    if callable(exit_function):
        try:
            exit_function()
        except Exception as exc:  # the worker is done: leave the directory, not a traceback
            logger.warning("could not clean up multiprocessing: %r", exc)


def _run_pooled(args: argparse.Namespace, config: RedisConfig, worker_id: str) -> int:
    from rushopt.core.worker.pooled import serve_pool

    try:
        serve_pool(
            args.pool,
            config,
            worker_id,
            heartbeat_period=args.heartbeat_period,
            heartbeat_expire=args.heartbeat_expire,
            grace=args.grace,
            on_idle=_announce_idle(args, config, worker_id),
            on_wait=_announce_wait(args, config, worker_id),
        )
    except ConnectionError as exc:
        print(error_message("worker", exc), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            f"rushopt worker: worker {worker_id} interrupted; it left pool {args.pool!r}",
            file=sys.stderr,
        )
        return 130
    logger.info("worker %s left pool %r", worker_id, args.pool)
    return 0


def _announcing(args: argparse.Namespace) -> bool:
    """Tell whether the worker says on stderr what it waits for.

    It does at the default log level (WARNING) and below; local workers, which
    their controller started, never wait for long and stay quiet.
    """
    quiet = logging.getLevelName(args.log_level) > logging.WARNING
    return not (quiet or args.local)


def _announce_wait(
    args: argparse.Namespace, config: RedisConfig, worker_id: str
) -> Callable[[str], None] | None:
    """Return what prints that the worker waits (as ``pre``) for a network's start arguments."""
    if not _announcing(args):
        return None

    def announce(network_id: str) -> None:
        print(
            f"rushopt worker: worker {worker_id} waits for start arguments of network "
            f"{network_id!r} at {config.redacted_url}",
            file=sys.stderr,
            flush=True,
        )

    return announce


def _announce_idle(
    args: argparse.Namespace, config: RedisConfig, worker_id: str
) -> Callable[[], None] | None:
    """Return what prints that a pooled worker waits to be claimed by a network."""
    if not _announcing(args):
        return None

    def announce() -> None:
        print(
            f"rushopt worker: worker {worker_id} waits to be claimed from pool "
            f"{args.pool!r} at {config.redacted_url}",
            file=sys.stderr,
            flush=True,
        )

    return announce


def _wait_for_redis(config: RedisConfig, timeout: float) -> bool:
    """Poll until Redis accepts a connection (True) or ``timeout`` seconds passed (False)."""
    from rushopt.core.waiting import wait_until
    from rushopt.exceptions import RedisAuthenticationError, RedisUnavailableError

    def reachable() -> bool:
        try:
            config.client().close()
        except RedisAuthenticationError:
            raise
        except RedisUnavailableError:
            logger.info("waiting for Redis at %s", config.redacted_url)
            return False
        return True

    return wait_until(reachable, timeout, min_interval=0.1, max_interval=2.0)
