"""Configuration objects: :class:`RedisConfig` (how to reach Redis) and :class:`WorkerSettings`.

Anywhere rushopt takes a ``config``, it accepts a URL string, a
:class:`RedisConfig` or ``None``. ``None`` resolves, in this order, to the
config stored by :func:`rushopt.rush_plan`, then the ``REDIS_URL`` environment
variable (read only by :meth:`RedisConfig.from_env`), then the embedded server
(:func:`rushopt.core.server.embedded_server`), which rushopt starts itself.

:class:`WorkerSettings` holds what local and remote workers are started with
(heartbeat, log thresholds); both are frozen and validated on construction.
"""

from __future__ import annotations

import functools
import logging
import numbers
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from rushopt.core.defaults import (
    DEFAULT_CONNECT_RETRIES,
    DEFAULT_CONNECT_TIMEOUT_S,
    DEFAULT_RECONNECT_TIMEOUT_S,
)
from rushopt.exceptions import InputError

__all__ = [
    "ConfigLike",
    "RedisConfig",
    "WorkerSettings",
    "check_heartbeat",
    "redact_url",
    "resolve_config",
]

_SCHEMES = ("redis", "rediss", "unix", "redis+cluster", "rediss+cluster")
_CLUSTER_SUFFIX = "+cluster"
#: A ``password=`` query parameter (compiled at import: a forked worker finds it compiled).
_PASSWORD_PARAMETER = re.compile(r"(?i)([?&]password=)[^&#]*")


def redact_url(url: str) -> str:
    """Return ``url`` with its password replaced by ``<redacted>``.

    Parameters
    ----------
    url : str
        A Redis URL.

    Returns
    -------
    str
        The same URL, safe to log.
    """
    url = _PASSWORD_PARAMETER.sub(lambda match: f"{match[1]}<redacted>", url)
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    netloc = f"{user}:<redacted>@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@dataclass(frozen=True)
class RedisConfig:
    """How to reach a Redis server.

    Parameters
    ----------
    url : str, optional
        A ``redis://``, ``rediss://`` (TLS) or ``unix://`` URL; password and ACL
        user may be part of it. ``None`` means ``redis://127.0.0.1:6379/0``.
        ``redis+cluster://host:port`` (TLS: ``rediss+cluster://``) is a Redis
        Cluster, reached through any of its nodes.
    cluster : bool, default False
        The URL is a node of a Redis Cluster (the same as the ``+cluster``
        scheme, which :attr:`url` then carries, so workers get it too).
        Every key of a network carries the network's hash tag, so all of a
        network lives in one slot: its commands, scripts and pipelines go to
        the node that owns that slot, and after a resharding or a failover
        to the new owner.
    reconnect_timeout : float, default 60
        Seconds the controller and the workers keep reconnecting when a
        connection breaks (a Redis restart, a network outage), with
        exponential backoff, before they raise ``RedisUnavailableError``;
        0 raises at once. The first connection is not retried: an
        unreachable server raises within a few seconds.
    **redis_kwargs
        Passed to :class:`redis.Redis` (e.g. ``password=``, ``username=``,
        ``ssl_ca_certs=``); where the URL sets the same option, the URL wins
        (redis-py's rule).

    Raises
    ------
    ValueError
        If the URL has an unknown scheme, a cluster URL names a database other
        than 0 (a cluster has only one) or ``reconnect_timeout`` is negative.

    Examples
    --------
    >>> RedisConfig("redis://:secret@localhost:6379/0")
    RedisConfig(url='redis://:<redacted>@localhost:6379/0')
    >>> RedisConfig("redis://10.0.0.5:7000", cluster=True).url
    'redis+cluster://10.0.0.5:7000'
    """

    url: str = "redis://127.0.0.1:6379/0"
    redis_kwargs: dict[str, Any] = field(default_factory=dict)
    reconnect_timeout: float = DEFAULT_RECONNECT_TIMEOUT_S

    def __init__(
        self,
        url: str | None = None,
        *,
        cluster: bool = False,
        reconnect_timeout: float = DEFAULT_RECONNECT_TIMEOUT_S,
        **redis_kwargs: Any,
    ) -> None:
        url = url if url is not None else "redis://127.0.0.1:6379/0"
        if not isinstance(url, str):
            raise TypeError(f"url must be a string, got {type(url).__name__}")
        scheme = urlsplit(url).scheme
        if scheme not in _SCHEMES:
            raise InputError(
                f"url must start with one of {', '.join(s + '://' for s in _SCHEMES)}, "
                f"got {redact_url(url)!r}"
            )
        if not isinstance(cluster, bool):
            raise TypeError(f"cluster must be True or False, got {cluster!r}")
        if cluster and not scheme.endswith(_CLUSTER_SUFFIX):
            if scheme == "unix":
                raise InputError("cluster=True needs a redis:// or rediss:// URL, not unix://")
            url = scheme + _CLUSTER_SUFFIX + url[len(scheme) :]
            scheme += _CLUSTER_SUFFIX
        if scheme.endswith(_CLUSTER_SUFFIX) and urlsplit(url).path.strip("/") not in ("", "0"):
            raise InputError(
                f"a Redis Cluster has only database 0; url {redact_url(url)!r} names another"
            )
        if (
            isinstance(reconnect_timeout, bool)
            or not isinstance(reconnect_timeout, (int, float))
            or not reconnect_timeout >= 0
        ):
            raise InputError(
                f"reconnect_timeout must be a number of seconds >= 0, got {reconnect_timeout!r}"
            )
        object.__setattr__(self, "url", url)
        object.__setattr__(self, "redis_kwargs", dict(redis_kwargs))
        object.__setattr__(self, "reconnect_timeout", float(reconnect_timeout))

    def __repr__(self) -> str:
        shown = {k: ("<redacted>" if k == "password" else v) for k, v in self.redis_kwargs.items()}
        extra = "".join(f", {k}={v!r}" for k, v in shown.items())
        if self.reconnect_timeout != DEFAULT_RECONNECT_TIMEOUT_S:
            extra = f", reconnect_timeout={self.reconnect_timeout!r}{extra}"
        return f"RedisConfig(url={self.redacted_url!r}{extra})"

    @property
    def redacted_url(self) -> str:
        """The URL with any password replaced by ``<redacted>``."""
        return redact_url(self.url)

    @property
    def cluster(self) -> bool:
        """Whether the URL is a Redis Cluster (``redis+cluster://``, ``rediss+cluster://``)."""
        return urlsplit(self.url).scheme.endswith(_CLUSTER_SUFFIX)

    @classmethod
    def from_env(cls) -> RedisConfig | None:
        """Build a config from the ``REDIS_URL`` environment variable, if it is set."""
        url = os.environ.get("REDIS_URL")
        return cls(url) if url else None

    def _client_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "socket_connect_timeout": DEFAULT_CONNECT_TIMEOUT_S,
            "health_check_interval": 30,
            # redis-py's default retries back off for many seconds; an unreachable
            # server must fail within a few seconds, a short blip must not
            "retry": Retry(ExponentialBackoff(cap=0.5, base=0.05), DEFAULT_CONNECT_RETRIES),
        }
        driver = _driver_info()
        if driver is not None and not {"driver_info", "lib_name", "lib_version"} & set(
            self.redis_kwargs
        ):
            kwargs["driver_info"] = driver
        kwargs.update(self.redis_kwargs)
        kwargs["decode_responses"] = False
        return kwargs

    def _plain_url(self) -> str:
        """Return the URL without ``+cluster``, which redis-py's clients parse."""
        return self.url.replace(_CLUSTER_SUFFIX + "://", "://", 1)

    def client(self) -> redis.Redis:
        """Connect and check that the server answers.

        Returns
        -------
        redis.Redis
            A client with ``decode_responses=False``; for a cluster URL a
            :class:`redis.cluster.RedisCluster`, which knows every node.

        Raises
        ------
        RedisUnavailableError
            If the server cannot be reached or refuses the credentials; the
            message shows the URL with the password redacted.
        ConfigError
            If a cluster URL names a server that is not part of a cluster.
        """
        from rushopt.core.network.errors import translate

        try:
            if self.cluster:
                return cast(
                    "redis.Redis",
                    redis.RedisCluster.from_url(self._plain_url(), **self._client_kwargs()),
                )
            client = redis.Redis.from_url(self.url, **self._client_kwargs())
            client.ping()
        except (
            redis.exceptions.RedisError,
            redis.exceptions.RedisClusterException,
            OSError,
        ) as exc:
            raise translate(exc, self.redacted_url, self.secrets) from None
        return client

    def node_client(self, host: str, port: int) -> redis.Redis:
        """Return a plain client of one node of this config's cluster (same credentials, TLS).

        Parameters
        ----------
        host : str
            The node's address, as the cluster announces it.
        port : int
            Its port.

        Returns
        -------
        redis.Redis
            A client that has not connected yet.
        """
        parts = urlsplit(self._plain_url())
        userinfo = parts.netloc.rpartition("@")[0]
        host = f"[{host}]" if ":" in host else host
        netloc = f"{userinfo}@{host}:{port}" if userinfo else f"{host}:{port}"
        url = urlunsplit((parts.scheme, netloc, "/0", parts.query, ""))
        return redis.Redis.from_url(url, **self._client_kwargs())

    @property
    def secrets(self) -> tuple[str | None, ...]:
        """The passwords of this config, which no message may show."""
        password = self.redis_kwargs.get("password")
        return (urlsplit(self.url).password, password if isinstance(password, str) else None)


ConfigLike = str | RedisConfig | None


def resolve_config(config: ConfigLike, persist_network: str | None = None) -> RedisConfig:
    """Turn a ``config`` argument into a :class:`RedisConfig`.

    Parameters
    ----------
    config : str, RedisConfig or None
        A URL, a config, or ``None`` for the resolution order of the module
        docstring (plan, ``REDIS_URL``, embedded server).
    persist_network : str or None, default None
        Where the embedded server would be used, use the one that keeps this
        network's data on disk instead
        (:func:`~rushopt.core.server.persistent.persistent_server`).

    Returns
    -------
    RedisConfig
        The config to connect with.

    Raises
    ------
    TypeError
        If ``config`` is of another type.
    """
    if isinstance(config, RedisConfig):
        return config
    if isinstance(config, str):
        return RedisConfig(config)
    if config is not None:
        raise TypeError(
            f"config must be a URL string, a RedisConfig or None, got {type(config).__name__}"
        )
    from rushopt.core.plan import planned_config

    planned = planned_config()
    if planned is not None:
        return planned
    from_env = RedisConfig.from_env()
    if from_env is not None:
        return from_env
    from rushopt.core.server import embedded_server, persistent_server

    server = embedded_server() if persist_network is None else persistent_server(persist_network)
    return RedisConfig(server.unix_url or server.url)


def check_heartbeat(
    heartbeat_period: int | None, heartbeat_expire: int | None
) -> tuple[int | None, int | None]:
    """Validate heartbeat settings.

    Parameters
    ----------
    heartbeat_period : int or None
        Whole seconds >= 1 between heartbeats; ``None`` disables heartbeats.
    heartbeat_expire : int or None
        Whole seconds >= ``heartbeat_period`` after which a silent worker is
        lost; default ``3 * heartbeat_period``.

    Returns
    -------
    (int or None, int or None)
        The period and the expiry.

    Raises
    ------
    ValueError
        If a value is not a whole number of seconds >= 1, expire < period, or
        an expiry is given without a period.
    """
    for name, value in (
        ("heartbeat_period", heartbeat_period),
        ("heartbeat_expire", heartbeat_expire),
    ):
        if value is None:
            continue
        whole = (
            isinstance(value, numbers.Real) and not isinstance(value, bool) and value == int(value)
        )
        if not whole or value < 1:
            raise InputError(f"{name} must be a whole number of seconds >= 1, got {value!r}")
    if heartbeat_period is None:
        if heartbeat_expire is not None:
            raise InputError("heartbeat_expire needs a heartbeat_period")
        return None, None
    period = int(heartbeat_period)
    expire = int(heartbeat_expire) if heartbeat_expire is not None else 3 * period
    if expire < period:
        raise InputError(f"heartbeat_expire ({expire}) must be >= heartbeat_period ({period})")
    return period, expire


@dataclass(frozen=True)
class WorkerSettings:
    """How a worker runs: heartbeat and logging to the network. Validated on construction.

    Parameters
    ----------
    heartbeat_period, heartbeat_expire : int, optional
        See :func:`check_heartbeat`.
    log_thresholds : dict, optional
        Logger name to level (name or number) for records sent to the network.
    log_buffer_size : int, default 0
        Records a worker buffers before writing them.

    Raises
    ------
    ValueError
        If a setting is invalid; the message names it.
    """

    heartbeat_period: int | None = None
    heartbeat_expire: int | None = None
    log_thresholds: Mapping[str, str | int] | None = None
    log_buffer_size: int = 0

    def __post_init__(self) -> None:
        period, expire = check_heartbeat(self.heartbeat_period, self.heartbeat_expire)
        object.__setattr__(self, "heartbeat_period", period)
        object.__setattr__(self, "heartbeat_expire", expire)
        object.__setattr__(self, "log_thresholds", _check_thresholds(self.log_thresholds))
        size = self.log_buffer_size
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise InputError(f"log_buffer_size must be an integer >= 0, got {size!r}")

    @classmethod
    def planned(
        cls,
        heartbeat_period: int | None = None,
        heartbeat_expire: int | None = None,
        log_thresholds: Mapping[str, str | int] | None = None,
        log_buffer_size: int = 0,
    ) -> WorkerSettings:
        """Build settings where ``log_thresholds=None`` takes those of :func:`rushopt.rush_plan`."""
        if log_thresholds is None:
            from rushopt.core.plan import planned

            log_thresholds = planned("log_thresholds")
        return cls(heartbeat_period, heartbeat_expire, log_thresholds, log_buffer_size)

    def as_kwargs(self) -> dict[str, Any]:
        """Return the settings as keyword arguments of :class:`~rushopt.core.RushWorker`."""
        return {
            "heartbeat_period": self.heartbeat_period,
            "heartbeat_expire": self.heartbeat_expire,
            "log_thresholds": dict(self.log_thresholds) if self.log_thresholds else None,
            "log_buffer_size": self.log_buffer_size,
        }


def _check_thresholds(
    log_thresholds: Mapping[str, str | int] | None,
) -> dict[str, str | int] | None:
    if log_thresholds is None:
        return None
    if not isinstance(log_thresholds, Mapping):
        raise TypeError("log_thresholds must be a dict of logger name to level")
    thresholds: dict[str, str | int] = {}
    for name, level in log_thresholds.items():
        if isinstance(level, str) and not isinstance(logging.getLevelName(level.upper()), int):
            raise InputError(f"log_thresholds[{name!r}]: unknown level {level!r}")
        thresholds[str(name)] = level.upper() if isinstance(level, str) else int(level)
    return thresholds


@functools.cache
def _driver_info() -> Any:
    """redis-py's client identification, built once per process (None before redis-py 7).

    Without it redis-py reads its own version from the installed package's
    metadata for every connection it makes: about 8 ms each, which was a fifth
    of a worker's start.
    """
    try:
        from redis.driver_info import DriverInfo
    except ImportError:
        return None
    return DriverInfo(name="redis-py", lib_version=redis.__version__)
