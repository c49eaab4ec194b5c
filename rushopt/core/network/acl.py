"""What a restricted Redis ACL user needs to run rushopt: :data:`ACL_COMMANDS`, :func:`acl_rules`.

Every key rushopt writes starts with ``rushopt:`` (networks and worker pools),
so one key pattern, ``~rushopt:*``, confines a user to them. The commands are
those the controller, the workers, their heartbeats, ``tune``, ``rushopt
status`` and the Lua scripts send (a script's commands are checked against the
user's ACL too). ``tests/test_acl.py`` runs all of them as a user with exactly
these rules.

Examples
--------
>>> print(acl_rules("rushopt", "s3cret")[:4])
['rushopt', 'on', '>s3cret', 'resetkeys']
"""

from __future__ import annotations

from rushopt.core.defaults import DEFAULT_KEY_PREFIX

__all__ = ["ACL_COMMANDS", "CLUSTER_ACL_COMMANDS", "acl_rules"]

#: Commands of a network and of worker pools, standalone or on a cluster.
ACL_COMMANDS: tuple[str, ...] = (
    # connection and scripts
    "ping",
    "info",
    "evalsha",
    "script|load",
    "time",
    # transactions: a fetch reads the finished lists in one MULTI
    "multi",
    "exec",
    # keys
    "get",
    "set",
    "del",
    "unlink",
    "exists",
    "expire",
    "pttl",
    "scan",
    "incr",
    "incrby",
    # lists: queues, archives, log, kill and wake channels
    "lpush",
    "rpush",
    "rpushx",
    "lpop",
    "rpop",
    "lrange",
    "llen",
    "lrem",
    "lindex",
    "blpop",
    "blmove",
    # hashes: tasks, worker info, metadata
    "hget",
    "hset",
    "hmget",
    "hgetall",
    "hdel",
    "hexists",
    "hincrby",
    # sets: worker states, running tasks, pool members
    "sadd",
    "srem",
    "smembers",
    "sismember",
    "smismember",
    "scard",
    "sunion",
    # sorted sets: failed tasks, idle pool workers, rungs of ASHA
    "zadd",
    "zrem",
    "zrange",
    "zrevrange",
    "zremrangebyscore",
    "zscore",
    "zmscore",
    "zcard",
    "zrank",
    # `rushopt status` without a network id: how long ago a network was used
    "object|idletime",
)

#: Also needed on a Redis Cluster: the client reads the slot map and command table.
CLUSTER_ACL_COMMANDS: tuple[str, ...] = ("cluster|slots", "cluster|nodes", "command")


def acl_rules(
    user: str, password: str, *, cluster: bool = False, prefix: str = DEFAULT_KEY_PREFIX
) -> list[str]:
    """Return the arguments of ``ACL SETUSER`` for a user that may run rushopt and nothing else.

    Parameters
    ----------
    user : str
        The ACL user name.
    password : str
        Its password.
    cluster : bool, default False
        Add the commands a cluster client needs.
    prefix : str, default "rushopt"
        The key prefix.

    Returns
    -------
    list of str
        ``[user, "on", ">password", "resetkeys", "~prefix:*", "-@all", "+cmd", ...]``.
    """
    commands = ACL_COMMANDS + (CLUSTER_ACL_COMMANDS if cluster else ())
    return [
        user,
        "on",
        f">{password}",
        "resetkeys",
        f"~{prefix}:*",
        "-@all",
        *(f"+{c}" for c in commands),
    ]
