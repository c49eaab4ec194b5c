"""Command line: ``python -m rushopt worker ...`` (also installed as ``rushopt``)."""

from __future__ import annotations

import argparse
import logging
import sys

__all__ = ["main"]


def _worker(args: argparse.Namespace) -> int:
    from rushopt.core.local import load_config_from_env, watch_parent
    from rushopt.core.runner import start_worker

    if args.supervise_fd is not None:
        watch_parent(args.supervise_fd)
    config = load_config_from_env()
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    start_worker(
        args.network_id,
        worker_id=args.worker_id,
        remote=not args.local,
        url=args.url,
        config=config,
        start_args_id=args.start_args_id,
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of the ``rushopt`` command."""
    parser = argparse.ArgumentParser(prog="rushopt", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    worker = commands.add_parser(
        "worker",
        help="run one worker of a network",
        description="Start one worker that joins NETWORK_ID on the Redis server at --url "
        "(default: REDIS_URL) and runs the start arguments pushed by the controller.",
    )
    worker.add_argument("--network-id", required=True, help="the network to join")
    worker.add_argument("--worker-id", default=None, help="the worker's id (default: a uuid)")
    worker.add_argument("--url", default=None, help="Redis URL (default: REDIS_URL)")
    worker.add_argument("--local", action="store_true", help=argparse.SUPPRESS)
    worker.add_argument("--start-args-id", default=None, help=argparse.SUPPRESS)
    worker.add_argument("--supervise-fd", type=int, default=None, help=argparse.SUPPRESS)
    worker.set_defaults(run=_worker)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line."""
    args = build_parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
