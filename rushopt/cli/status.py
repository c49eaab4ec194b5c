"""``rushopt status NETWORK_ID``: what a network's workers and tasks are doing."""

from __future__ import annotations

import argparse
import math
import os
import sys
from typing import Any

from rushopt.cli.options import URL_ENV
from rushopt.core import Rush
from rushopt.core.controller.worker_script import PASSWORD_ENV

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
        help="show the workers, tasks and best value of a network",
        description="Show a network's workers (state, host, pid, heartbeat), its tasks by "
        "state and, when it runs an optimization (rushopt.tune), the best value so far.",
    )
    status.add_argument("network_id", metavar="NETWORK_ID", help="the network")
    status.add_argument(
        "--url",
        default=None,
        help=f"Redis URL (default: ${URL_ENV}, then $REDIS_URL); the password may come from "
        f"${PASSWORD_ENV}",
    )
    status.set_defaults(run=_run_status, parser=status)


def _run_status(args: argparse.Namespace) -> int:
    from rushopt.core.config import RedisConfig

    parser: argparse.ArgumentParser = args.parser
    url = args.url or os.environ.get(URL_ENV) or os.environ.get("REDIS_URL")
    if not url:
        parser.error(f"no Redis server given: pass --url, or set {URL_ENV} or REDIS_URL")
    password = os.environ.get(PASSWORD_ENV)
    try:
        config = RedisConfig(url, password=password) if password else RedisConfig(url)
        rush = Rush(network_id=args.network_id, config=config)
    except ValueError as exc:
        parser.error(str(exc))
    except ConnectionError as exc:
        print(f"rushopt status: error: {exc}", file=sys.stderr)
        return 1
    if rush.n_workers == 0 and rush.n_tasks == 0:
        print(f"rushopt status: network {args.network_id!r} has no workers and no tasks")
        return 1
    print(network_status(rush))
    return 0
