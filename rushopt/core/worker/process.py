"""The worker process's side of being started by a controller.

A controller hands its local workers their connection settings in an
environment variable (:data:`CONFIG_ENV`; never the command line, where ``ps``
would show a password), and, with ``supervise=True``, the read end of a pipe
whose end-of-file tells the worker that the controller died.
"""

from __future__ import annotations

import base64
import os
import pickle
import threading

from rushopt.core.config import RedisConfig
from rushopt.core.defaults import CONFIG_ENV

__all__ = ["CONFIG_ENV", "load_config_from_env", "watch_parent"]


def load_config_from_env() -> RedisConfig | None:
    """Read (and remove) the config a controller passed to its local worker."""
    encoded = os.environ.pop(CONFIG_ENV, None)
    if not encoded:
        return None
    config = pickle.loads(base64.b64decode(encoded))
    if not isinstance(config, RedisConfig):
        raise TypeError(f"{CONFIG_ENV} does not hold a RedisConfig")
    return config


def watch_parent(fd: int) -> None:
    """Exit this process as soon as the pipe ``fd`` reaches end-of-file."""

    def watch() -> None:
        while True:
            try:
                if not os.read(fd, 1):
                    break
            except InterruptedError:
                continue
            except OSError:
                break
        os._exit(1)

    threading.Thread(target=watch, name="rushopt-supervise", daemon=True).start()
