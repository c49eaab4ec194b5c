"""The Redis boundary of a network.

* :mod:`~rushopt.core.network.keys`: the key schema, the only place a key is formatted;
* :mod:`~rushopt.core.network.lua_runner` and ``lua/``: the Lua scripts and how they run;
* :mod:`~rushopt.core.network.scripts`: a typed wrapper per script, owning its KEYS/ARGV;
* :mod:`~rushopt.core.network.errors`: redis-py exceptions to rushopt's;
* :mod:`~rushopt.core.network.reconnect`: riding out outages;
* :mod:`~rushopt.core.network.cluster`: the node of a Redis Cluster that holds a network;
* :mod:`~rushopt.core.network.connection`: :class:`Network`, which holds all of the above.
"""

from __future__ import annotations

from rushopt.core.network.connection import Network
from rushopt.core.network.keys import KeySchema, PoolKeySchema, text, validate_network_id
from rushopt.core.network.scripts import PoolScripts

__all__ = ["KeySchema", "Network", "PoolKeySchema", "PoolScripts", "text", "validate_network_id"]
