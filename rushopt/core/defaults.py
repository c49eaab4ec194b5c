"""Documented defaults of rushopt.core."""

from __future__ import annotations

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_CONNECT_RETRIES",
    "DEFAULT_CONNECT_TIMEOUT_S",
    "DEFAULT_KEY_PREFIX",
    "DEFAULT_MAX_OBJECT_SIZE",
    "DEFAULT_POOL_WAIT_S",
    "DEFAULT_POP_TIMEOUT_S",
    "DEFAULT_RECONNECT_TIMEOUT_S",
    "DEFAULT_WORKER_START_TIMEOUT_S",
    "POOL_BEAT_EXPIRE_S",
    "POOL_BEAT_PERIOD_S",
]

#: First component of every Redis key that rushopt writes.
DEFAULT_KEY_PREFIX = "rushopt"

#: Seconds to wait for a TCP connection to Redis (per attempt).
DEFAULT_CONNECT_TIMEOUT_S = 2.0

#: Retries of a command whose connection failed, so an unreachable server raises
#: ``ConnectionError`` within about (1 + retries) x the connect timeout.
DEFAULT_CONNECT_RETRIES = 1

#: Seconds the controller and the workers keep reconnecting after a connection broke
#: (``RedisConfig(reconnect_timeout=...)``), before they raise ``RedisUnavailableError``.
DEFAULT_RECONNECT_TIMEOUT_S = 60.0

#: Seconds an idle worker blocks on the queue before it checks its flags again.
DEFAULT_POP_TIMEOUT_S = 1.0

#: Largest start-argument payload (bytes) stored in Redis itself.
DEFAULT_MAX_OBJECT_SIZE = 512 * 2**20

#: Seconds ``start_local_workers`` waits for a worker that has not registered and whose
#: process is still alive, when no timeout is given (``inf`` waits forever).
DEFAULT_WORKER_START_TIMEOUT_S = float("inf")

#: Environment variable that carries the pickled RedisConfig from a controller to its
#: local workers (never the command line, where ``ps`` would show a password).
CONFIG_ENV = "RUSHOPT_WORKER_CONFIG"

#: Seconds ``tune(pool=...)`` and ``RushSearchCV(pool=...)`` wait for an idle worker of
#: the pool when the plan's ``start_worker_timeout`` is infinite (its default).
DEFAULT_POOL_WAIT_S = 60.0

#: Seconds between the beats of an idle pooled worker, and until a silent one counts as
#: gone (it is then never claimed).
POOL_BEAT_PERIOD_S = 1
POOL_BEAT_EXPIRE_S = 5
