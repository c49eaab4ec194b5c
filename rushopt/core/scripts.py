"""The Lua scripts of the network, loaded once from ``lua/*.lua``.

Every state change of a task or worker is one of these scripts, so it is
atomic. Each file starts with its KEYS/ARGV layout and why it must be atomic.
Scripts never format key names: every key arrives in ``KEYS`` or, for task
keys read from a list, as data (those keys share the network's hash tag, so
they live in the same cluster slot).
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import redis
    from redis.commands.core import Script

__all__ = ["SCRIPT_NAMES", "Scripts"]

SCRIPT_NAMES = (
    "fail_tasks",
    "finish_tasks",
    "pop_task",
    "push_tasks",
    "read_hashes",
    "read_list_hashes",
    "register_worker",
    "set_worker_state",
    "task_states",
)


@cache
def _source(name: str) -> str:
    return resources.files("rushopt.core").joinpath("lua", f"{name}.lua").read_text()


class Scripts:
    """The scripts registered on one client (EVALSHA, loading on first use).

    Parameters
    ----------
    client : redis.Redis
        The client to run them with; pipelines of this client may use them too.
    """

    fail_tasks: Script
    finish_tasks: Script
    pop_task: Script
    push_tasks: Script
    read_hashes: Script
    read_list_hashes: Script
    register_worker: Script
    set_worker_state: Script
    task_states: Script

    def __init__(self, client: redis.Redis) -> None:
        for name in SCRIPT_NAMES:
            setattr(self, name, client.register_script(_source(name)))
