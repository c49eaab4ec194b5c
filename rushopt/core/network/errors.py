"""The error boundary: every redis-py exception becomes one of rushopt's.

Like httpx's ``map_exceptions`` at its transport, :func:`map_redis_errors`
is the one place where exceptions of the Redis client are translated, so no
``redis.exceptions.*`` ever reaches a user:

=================================================  ===============================
redis-py (or the socket below it)                  rushopt
=================================================  ===============================
``AuthenticationError``, ``NOAUTH``, ``WRONGPASS``  :class:`RedisAuthenticationError`
``ConnectionError``, ``TimeoutError``, ``OSError``  :class:`RedisUnavailableError`
``BusyLoadingError`` (a restarted server loading)   :class:`RedisUnavailableError`
``MOVED`` / ``ASK`` to a plain client               :class:`ConfigError`
a cluster URL naming a standalone server           :class:`ConfigError`
no node of a cluster reachable                     :class:`RedisUnavailableError`
any other ``RedisError``                            :class:`RedisCommandError`
=================================================  ===============================

Messages show the URL with its password redacted, and never the password.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import redis

from rushopt.exceptions import (
    ConfigError,
    RedisAuthenticationError,
    RedisCommandError,
    RedisUnavailableError,
    RushError,
)

__all__ = ["cluster_url_error", "map_redis_errors", "translate"]

_AUTH_MARKERS = ("NOAUTH", "WRONGPASS", "invalid password", "invalid username-password")


def _redact(message: str, secrets: tuple[str | None, ...]) -> str:
    for secret in secrets:
        if secret:
            message = message.replace(secret, "<redacted>")
    return message


def translate(
    exc: BaseException, redacted_url: str, secrets: tuple[str | None, ...] = ()
) -> RushError:
    """Return the rushopt exception for an exception of the Redis client.

    Parameters
    ----------
    exc : BaseException
        What redis-py (or the socket layer) raised.
    redacted_url : str
        The server's URL with the password replaced, for the message.
    secrets : tuple of str
        Strings (passwords) that must not appear in the message.

    Returns
    -------
    RushError
        The exception to raise instead (``raise translate(...) from exc``).
    """
    detail = _redact(f"{type(exc).__name__}: {exc}", secrets)
    text = str(exc)
    if isinstance(exc, redis.exceptions.AuthenticationError) or any(
        marker in text for marker in _AUTH_MARKERS
    ):
        return RedisAuthenticationError(
            f"authentication failed for Redis at {redacted_url}: {detail}"
        )
    if isinstance(exc, redis.exceptions.BusyLoadingError):
        return RedisUnavailableError(f"Redis at {redacted_url} is loading its data: {detail}")
    if isinstance(exc, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)):
        return RedisUnavailableError(f"cannot reach Redis at {redacted_url}: {detail}")
    if isinstance(exc, redis.exceptions.AskError):  # MOVED or ASK: a plain client on a cluster
        code = "MOVED" if isinstance(exc, redis.exceptions.MovedError) else "ASK"
        return cluster_url_error(redacted_url, f"it answered {code}")
    if isinstance(exc, redis.exceptions.RedisClusterException):
        if "not enabled" in text:
            return ConfigError(
                f"Redis at {redacted_url} is not a Redis Cluster (cluster mode is disabled "
                "on it): connect to a standalone server with a redis:// or rediss:// URL, "
                "without +cluster and without cluster=True"
            )
        if "cannot be connected" in text or "not covered" in text:
            return RedisUnavailableError(
                f"cannot reach the Redis Cluster at {redacted_url}: {detail}"
            )
    return RedisCommandError(f"Redis at {redacted_url} refused a command: {detail}")


def cluster_url_error(redacted_url: str, why: str) -> ConfigError:
    """Return the error for a plain connection to a node of a Redis Cluster.

    Parameters
    ----------
    redacted_url : str
        The URL used, password redacted.
    why : str
        How the cluster showed itself.

    Returns
    -------
    ConfigError
        Saying to use the cluster URL form.
    """
    scheme, _, rest = redacted_url.partition("://")
    suggestion = (
        f"{scheme}+cluster://{rest}"
        if scheme in ("redis", "rediss")
        else ("redis+cluster://host:port")
    )
    return ConfigError(
        f"Redis at {redacted_url} is a node of a Redis Cluster ({why}): a plain connection "
        f"cannot use a cluster; use the cluster URL {suggestion} (or RedisConfig(url, "
        "cluster=True))"
    )


@contextlib.contextmanager
def map_redis_errors(redacted_url: str, secrets: tuple[str | None, ...] = ()) -> Iterator[None]:
    """Translate exceptions of the Redis client raised inside the block.

    Parameters
    ----------
    redacted_url : str
        The server's URL with the password replaced, for messages.
    secrets : tuple of str
        Strings (passwords) that must not appear in messages.

    Raises
    ------
    RushError
        A subclass chosen by :func:`translate`.
    """
    try:
        yield
    except RushError:
        raise  # already translated (RedisUnavailableError is an OSError too)
    except (redis.exceptions.RedisError, OSError) as exc:
        raise translate(exc, redacted_url, secrets) from exc
