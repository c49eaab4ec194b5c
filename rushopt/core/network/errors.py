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
``MOVED`` / ``ASK`` (a Redis Cluster node)          :class:`ConfigError`
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

__all__ = ["map_redis_errors", "translate"]

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
    if isinstance(exc, redis.exceptions.ResponseError) and text.startswith(("MOVED", "ASK")):
        return ConfigError(
            f"Redis at {redacted_url} is a Redis Cluster node (it answered {text.split()[0]}): "
            "a plain connection cannot use a cluster; connect to a standalone server "
            "(cluster URLs, redis+cluster://host:port, are not supported yet)"
        )
    return RedisCommandError(f"Redis at {redacted_url} refused a command: {detail}")


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
