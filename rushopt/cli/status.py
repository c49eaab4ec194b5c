"""``rushopt status [NETWORK_ID]``: what a network's workers and tasks are doing.

Without a network id it lists the networks on the server instead
(:mod:`rushopt.cli.networks`).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from typing import TYPE_CHECKING, Any

from rushopt.cli.options import URL_ENV, error_message
from rushopt.core import Rush
from rushopt.core.config import RedisConfig
from rushopt.core.controller.worker_script import PASSWORD_ENV
from rushopt.exceptions import RushError

if TYPE_CHECKING:
    from rushopt.cli.networks import NetworkSummary

__all__ = ["add_status_parser", "network_status"]


def _heartbeat(key: Any, ttl: float | None, state: str) -> str:
    if not isinstance(key, str) or not key or state not in ("running", "pre"):
        return "-"
    return f"alive ({round(ttl)} s left)" if ttl is not None else "expired"


def _best(rush: Rush) -> list[str]:
    meta = rush.metadata
    metric, direction = meta.get("metric"), meta.get("direction", "minimize")
    if not metric:
        return []
    rows = rush.fetch_finished_tasks(fields=("xs", "ys"), data_format="list")
    lines = [f"optimization: {meta.get('optimizer', 'an optimizer')} to {direction} {metric!r}"]
    if "n_evals" in meta:
        lines[0] += f", budget {meta['n_evals']} evaluations"
    values = [
        (row[metric], row)
        for row in rows
        if isinstance(row.get(metric), (int, float)) and math.isfinite(row[metric])
    ]
    if not values:
        lines.append("  no finished evaluation yet")
        return lines
    pick = max if direction == "maximize" else min
    value, row = pick(values, key=lambda pair: pair[0])
    params = {
        k: v for k, v in row.items() if k not in (metric, "key") and k in meta.get("params", row)
    }
    lines.append(f"  best so far: {value:.6g} (task {row['key']})")
    if params:
        lines.append("  " + ", ".join(f"{k}={v!r}" for k, v in params.items()))
    return lines


def network_status(rush: Rush) -> str:
    """Describe a network: its workers, its tasks by state and, for an optimization, the best value.

    Parameters
    ----------
    rush : Rush
        A controller of the network.

    Returns
    -------
    str
        A few lines of text.
    """
    lines = [f"network {rush.network_id!r} on {rush.config.redacted_url}"]
    info = rush.worker_info
    states = info["state"].value_counts().to_dict() if len(info) else {}
    summary = ", ".join(f"{n} {state}" for state, n in sorted(states.items()))
    lines.append(f"workers: {len(info)}" + (f" ({summary})" if summary else ""))
    ttls = rush.heartbeat_ttls(list(info["worker_id"]))
    rows = []
    n_dead = 0
    for row, ttl in zip(info.itertuples(index=False), ttls, strict=True):
        where = f"{row.hostname}:{row.pid}" + (" remote" if row.remote else "")
        beat = _heartbeat(row.heartbeat, ttl, str(row.state))
        dead = beat == "expired"
        n_dead += dead
        state = f"{row.state} DEAD" if dead else str(row.state)
        rows.append(f"  {row.worker_id}  {state:<12}  {where}  heartbeat {beat}")
    if n_dead:
        summary += f"; {n_dead} DEAD: heartbeat expired, not working"
    lines[-1] = f"workers: {len(info)}" + (f" ({summary})" if summary else "")
    lines += rows
    lines.append(
        "tasks: "
        + ", ".join(
            f"{rush_count} {name}"
            for name, rush_count in (
                ("queued", rush.n_queued_tasks + rush.n_queued_priority_tasks),
                ("running", rush.n_running_tasks),
                ("finished", rush.n_finished_tasks),
                ("failed", rush.n_failed_tasks),
            )
        )
    )
    lines += _best(rush)
    return "\n".join(lines)


def add_status_parser(commands: Any) -> None:
    """Add the ``status`` subcommand to the ``rushopt`` command line.

    Parameters
    ----------
    commands : argparse subparsers
        What :meth:`argparse.ArgumentParser.add_subparsers` returned.
    """
    status = commands.add_parser(
        "status",
        help="list the networks on a server, or show what one network is doing",
        description="Show a network's workers (state, host, pid, heartbeat), its tasks by "
        "state and, when it runs an optimization (rushopt.tune), the best value so far. "
        "Without NETWORK_ID, list the networks on the server (every primary of a Redis "
        "Cluster): id, workers by state, tasks by state and last activity. Last activity is "
        "'now' while a worker's heartbeat or a controller's lease is alive, else the newest "
        "of the last failed task, the last log record and the last write or read of the "
        "network's task list.",
    )
    status.add_argument(
        "network_id",
        metavar="NETWORK_ID",
        nargs="?",
        default=None,
        help="the network (default: list every network)",
    )
    status.add_argument(
        "--url",
        default=None,
        help=f"Redis URL (default: ${URL_ENV}, then $REDIS_URL); the password may come from "
        f"${PASSWORD_ENV}",
    )
    status.set_defaults(run=_run_status, parser=status)


def _run_status(args: argparse.Namespace) -> int:
    parser: argparse.ArgumentParser = args.parser
    url = args.url or os.environ.get(URL_ENV) or os.environ.get("REDIS_URL")
    if not url:
        parser.error(f"no Redis server given: pass --url, or set {URL_ENV} or REDIS_URL")
    password = os.environ.get(PASSWORD_ENV)
    try:
        config = RedisConfig(url, password=password) if password else RedisConfig(url)
        if args.network_id is None:
            from rushopt.cli.networks import find_networks

            networks = find_networks(config)
        else:
            rush = Rush(network_id=args.network_id, config=config)
    except ValueError as exc:
        parser.error(str(exc))
    except (ConnectionError, RushError) as exc:  # nothing printed yet: not a closed stdout
        print(error_message("status", exc), file=sys.stderr)
        return 1
    if args.network_id is None:
        return _print_networks(networks, config)
    try:
        if rush.n_workers == 0 and rush.n_tasks == 0:
            print(f"rushopt status: network {args.network_id!r} has no workers and no tasks")
            return 1
        text = network_status(rush)
    except RushError as exc:  # e.g. a command the ACL user may not run
        print(error_message("status", exc), file=sys.stderr)
        return 1
    print(text)
    return 0


def _print_networks(networks: list[NetworkSummary], config: RedisConfig) -> int:
    from rushopt.cli.networks import format_networks

    if not networks:
        print(f"rushopt status: no networks on {config.redacted_url}")
        return 0
    print(format_networks(networks))
    return 0
