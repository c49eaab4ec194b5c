"""How to reach Redis: :class:`RedisConfig` and the resolution order of ``config``.

Anywhere rushopt takes a ``config``, it accepts a URL string, a
:class:`RedisConfig` or ``None``. ``None`` resolves, in this order, to the
config stored by :func:`rushopt.rush_plan`, then the ``REDIS_URL`` environment
variable (read only by :meth:`RedisConfig.from_env`), then the embedded server
(:func:`rushopt.core.server.embedded_server`), which rushopt starts itself.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from rushopt.core.defaults import DEFAULT_CONNECT_RETRIES, DEFAULT_CONNECT_TIMEOUT_S
from rushopt.exceptions import InputError, RedisUnavailableError

__all__ = ["ConfigLike", "RedisConfig", "redact_url", "resolve_config"]

_SCHEMES = ("redis", "rediss", "unix")


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
    url = re.sub(r"(?i)([?&]password=)[^&#]*", r"\1<redacted>", url)
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
    **redis_kwargs
        Passed to :class:`redis.Redis` (e.g. ``password=``, ``username=``,
        ``ssl_ca_certs=``); where the URL sets the same option, the URL wins
        (redis-py's rule).

    Raises
    ------
    ValueError
        If the URL has an unknown scheme.

    Examples
    --------
    >>> RedisConfig("redis://:secret@localhost:6379/0")
    RedisConfig(url='redis://:<redacted>@localhost:6379/0')
    """

    url: str = "redis://127.0.0.1:6379/0"
    redis_kwargs: dict[str, Any] = field(default_factory=dict)

    def __init__(self, url: str | None = None, **redis_kwargs: Any) -> None:
        url = url if url is not None else "redis://127.0.0.1:6379/0"
        if not isinstance(url, str):
            raise TypeError(f"url must be a string, got {type(url).__name__}")
        scheme = urlsplit(url).scheme
        if scheme not in _SCHEMES:
            raise InputError(
                f"url must start with one of {', '.join(s + '://' for s in _SCHEMES)}, "
                f"got {redact_url(url)!r}"
            )
        object.__setattr__(self, "url", url)
        object.__setattr__(self, "redis_kwargs", dict(redis_kwargs))

    def __repr__(self) -> str:
        shown = {k: ("<redacted>" if k == "password" else v) for k, v in self.redis_kwargs.items()}
        extra = "".join(f", {k}={v!r}" for k, v in shown.items())
        return f"RedisConfig(url={self.redacted_url!r}{extra})"

    @property
    def redacted_url(self) -> str:
        """The URL with any password replaced by ``<redacted>``."""
        return redact_url(self.url)

    @classmethod
    def from_env(cls) -> RedisConfig | None:
        """Build a config from the ``REDIS_URL`` environment variable, if it is set."""
        url = os.environ.get("REDIS_URL")
        return cls(url) if url else None

    def client(self) -> redis.Redis:
        """Connect and check that the server answers.

        Returns
        -------
        redis.Redis
            A client with ``decode_responses=False``.

        Raises
        ------
        RedisUnavailableError
            If the server cannot be reached or refuses the credentials; the
            message shows the URL with the password redacted.
        """
        kwargs: dict[str, Any] = {
            "socket_connect_timeout": DEFAULT_CONNECT_TIMEOUT_S,
            "health_check_interval": 30,
            # redis-py's default retries back off for many seconds; an unreachable
            # server must fail within a few seconds, a short blip must not
            "retry": Retry(ExponentialBackoff(cap=0.5, base=0.05), DEFAULT_CONNECT_RETRIES),
        }
        kwargs.update(self.redis_kwargs)
        kwargs["decode_responses"] = False
        try:
            client = redis.Redis.from_url(self.url, **kwargs)
            client.ping()
        except (redis.exceptions.RedisError, OSError) as exc:
            raise RedisUnavailableError(
                f"cannot reach Redis at {self.redacted_url}: {type(exc).__name__}: "
                f"{_redact_message(str(exc), self)}"
            ) from None
        return client


def _redact_message(message: str, config: RedisConfig) -> str:
    """Remove the password from an error message, should a client library echo it."""
    secrets = [urlsplit(config.url).password, config.redis_kwargs.get("password")]
    for secret in secrets:
        if secret:
            message = message.replace(str(secret), "<redacted>")
    return message


ConfigLike = str | RedisConfig | None


def resolve_config(config: ConfigLike) -> RedisConfig:
    """Turn a ``config`` argument into a :class:`RedisConfig`.

    Parameters
    ----------
    config : str, RedisConfig or None
        A URL, a config, or ``None`` for the resolution order of the module
        docstring (plan, ``REDIS_URL``, embedded server).

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
    from rushopt.core.server import embedded_server

    server = embedded_server()
    return RedisConfig(server.unix_url or server.url)
