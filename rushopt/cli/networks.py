"""``rushopt status`` without a network id: every network on a Redis server, one line each.

:func:`find_networks` scans the server (every primary of a Redis Cluster) for
one key per network, the ``worker_ids`` set and the ``all_tasks`` list, with
``SCAN ... MATCH``, and reads a few counters of each network it finds; it never
reads a task. :func:`format_networks` turns the result into a table.

Last activity
-------------
Redis keeps no write time per key, and the tasks carry no timestamps, so the
last activity of a network is the newest of what is cheap to read:

* ``now`` while one of its workers has a live heartbeat or a controller holds
  its lease (``tune``, ``RushSearchCV``);
* otherwise the newest of: the time of its last failed task (the failed set is
  scored by the server's clock), the time of its last log record, and the last
  time its list of tasks was written or read (Redis' ``OBJECT IDLETIME`` of the
  ``all_tasks`` list, which grows whenever tasks are pushed; the listing itself
  reads it without touching it; unknown when the server evicts by LFU).

``-`` means none of these is known.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import redis

from rushopt.core.network.errors import translate
from rushopt.core.network.keys import KeySchema, network_id_from_key, network_key_pattern, text
from rushopt.core.states import WORKER_STATES

if TYPE_CHECKING:
    from rushopt.core.config import RedisConfig

__all__ = ["NetworkSummary", "find_networks", "format_networks"]

#: The keys that show a network exists: it has workers, or it has tasks.
_MARKER_KEYS = ("worker_ids", "all_tasks")

#: Keys SCAN asks for per call: a large batch keeps the round trips few.
_SCAN_COUNT = 1000


@dataclass(frozen=True)
class NetworkSummary:
    """One network, as ``rushopt status`` lists it.

    Parameters
    ----------
    network_id : str
        The network.
    workers : dict of str to int
        Number of workers per state (every state of
        :data:`~rushopt.core.states.WORKER_STATES`).
    tasks : dict of str to int
        Number of tasks ``queued`` (shared and priority queues), ``running``,
        ``finished`` and ``failed``.
    live : bool
        Whether a worker's heartbeat is alive or a controller holds the lease.
    last_activity : float or None
        Seconds since the epoch (the server's clock) of the newest activity
        known, see the module docstring; ``None`` if unknown.
    now : float
        The server's time when the network was read.
    """

    network_id: str
    workers: dict[str, int]
    tasks: dict[str, int]
    live: bool
    last_activity: float | None
    now: float


def find_networks(config: RedisConfig) -> list[NetworkSummary]:
    """Find every network on the server of ``config`` and summarize it.

    Parameters
    ----------
    config : RedisConfig
        The server; for a Redis Cluster, every primary is scanned.

    Returns
    -------
    list of NetworkSummary
        The networks, sorted by id.

    Raises
    ------
    RedisUnavailableError
        If the server (a primary) cannot be reached or refuses the credentials.
    """
    from rushopt.core.network.cluster import primary_clients

    clients = primary_clients(config) if config.cluster else [config.client()]
    found: list[NetworkSummary] = []
    try:
        for client in clients:
            # the whole network lives on the node that holds its keys (one hash slot)
            ids: set[str] = set()
            for name in _MARKER_KEYS:
                pattern = network_key_pattern(name)
                for key in client.scan_iter(match=pattern, count=_SCAN_COUNT):
                    network_id = network_id_from_key(key, name)
                    if network_id is not None:
                        ids.add(network_id)
            found += [_summarize(client, network_id) for network_id in ids]
    except (redis.exceptions.RedisError, OSError) as exc:
        raise translate(exc, config.redacted_url, config.secrets) from None
    finally:
        for client in clients:
            client.close()
    return sorted(found, key=lambda summary: summary.network_id)


def _summarize(client: redis.Redis, network_id: str) -> NetworkSummary:
    keys = KeySchema(network_id)
    pipe = client.pipeline(transaction=False)
    # first, before any command below reads (touches) the list
    pipe.object("idletime", keys.all_tasks)
    pipe.time()
    pipe.smembers(keys.worker_ids)
    for state in WORKER_STATES:
        pipe.scard(keys.worker_state(state))
    pipe.llen(keys.queued_tasks)
    pipe.llen(keys.finished_tasks)
    pipe.zcard(keys.failed_tasks)
    pipe.zrevrange(keys.failed_tasks, 0, 0, withscores=True)
    pipe.lindex(keys.log, -1)
    pipe.exists(keys.controller)
    pipe.sunion([keys.worker_state("running"), keys.worker_state("pre")])
    replies = pipe.execute(raise_on_error=False)
    for reply in replies[1:]:  # OBJECT IDLETIME alone may fail (LFU eviction, no such key)
        if isinstance(reply, Exception):
            raise reply
    idle, (seconds, micros), worker_ids = replies[:3]
    now = int(seconds) + int(micros) / 1e6
    n = len(WORKER_STATES)
    workers = {
        state: int(count) for state, count in zip(WORKER_STATES, replies[3 : 3 + n], strict=True)
    }
    queued, finished, failed, newest_failure, last_log, lease, active = replies[3 + n :]

    ids = sorted(text(w) for w in worker_ids)
    active_ids = sorted(text(w) for w in active)  # a stopped worker's beat may linger
    pipe = client.pipeline(transaction=False)
    for worker_id in ids:
        pipe.scard(keys.worker_running(worker_id))
        pipe.llen(keys.priority_queue(worker_id))
    for worker_id in active_ids:
        pipe.exists(keys.heartbeat(worker_id))
    per_worker = pipe.execute() if ids or active_ids else []
    m = 2 * len(ids)
    running = sum(int(r) for r in per_worker[0:m:2])
    queued = int(queued) + sum(int(q) for q in per_worker[1:m:2])
    beating = any(int(b) for b in per_worker[m:])

    times = []
    if isinstance(idle, int):  # None: no task yet; an error: the server evicts by LFU
        times.append(now - idle)
    if newest_failure:
        times.append(float(newest_failure[0][1]))
    stamp = _log_timestamp(last_log)
    if stamp is not None:
        times.append(stamp)
    return NetworkSummary(
        network_id=network_id,
        workers=workers,
        tasks={
            "queued": queued,
            "running": running,
            "finished": int(finished),
            "failed": int(failed),
        },
        live=beating or bool(int(lease)),
        last_activity=max(times) if times else None,
        now=now,
    )


def _log_timestamp(record: Any) -> float | None:
    """Return the ``timestamp`` of a JSON log record, or ``None``."""
    if not isinstance(record, (bytes, str)):
        return None
    try:
        stamp = json.loads(record).get("timestamp")
    except (ValueError, AttributeError):
        return None
    return float(stamp) if isinstance(stamp, (int, float)) else None


def _ago(summary: NetworkSummary) -> str:
    if summary.live:
        return "now"
    if summary.last_activity is None:
        return "-"
    seconds = max(0.0, summary.now - summary.last_activity)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return f"{int(seconds)} s ago"


def _counts(counts: dict[str, int]) -> str:
    shown = [f"{n} {name}" for name, n in counts.items() if n]
    return ", ".join(shown) or "none"


def format_networks(networks: list[NetworkSummary]) -> str:
    """Format networks as a table: id, workers by state, tasks by state, last activity.

    Parameters
    ----------
    networks : list of NetworkSummary
        What :func:`find_networks` returned.

    Returns
    -------
    str
        A header line and one line per network (states with no worker or task
        left out).

    Examples
    --------
    >>> net = NetworkSummary("n1", {"running": 2, "lost": 0}, {"queued": 3, "failed": 0},
    ...                      live=True, last_activity=None, now=0.0)
    >>> print(format_networks([net]))
    NETWORK  WORKERS    TASKS     LAST ACTIVITY
    n1       2 running  3 queued  now
    """
    header = ("NETWORK", "WORKERS", "TASKS", "LAST ACTIVITY")
    rows = [header] + [
        (net.network_id, _counts(net.workers), _counts(net.tasks), _ago(net)) for net in networks
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True))
        + "  "
        + row[3]
        for row in rows
    )
