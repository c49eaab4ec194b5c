"""Argument types and settings that the ``rushopt`` subcommands share.

Each type is a callable for ``argparse``'s ``type=``: it returns the parsed
value or raises :class:`argparse.ArgumentTypeError`, which ``argparse`` turns
into a usage error (exit code 2) naming the option.

Examples
--------
>>> whole_number(1)("3")
3
>>> port("65536")
Traceback (most recent call last):
...
argparse.ArgumentTypeError: must be in 1..65535, got 65536
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

__all__ = [
    "LOG_FORMAT",
    "LOG_LEVELS",
    "URL_ENV",
    "db_number",
    "duration",
    "error_message",
    "existing_dir",
    "existing_file",
    "log_level",
    "network_id",
    "non_empty",
    "port",
    "seconds",
    "server_port",
    "whole_number",
]

URL_ENV = "RUSHOPT_REDIS_URL"
"""Environment variable with the URL of the Redis server (before ``REDIS_URL``)."""

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
"""The names ``--log-level`` accepts."""

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
"""Format of the log lines that ``rushopt worker`` and ``rushopt server`` write to stderr."""


def error_message(command: str, exc: BaseException) -> str:
    """Return the line a subcommand prints for an error: its name, the exception's type and text.

    Parameters
    ----------
    command : str
        The subcommand (``"worker"``, ``"status"``, ...).
    exc : BaseException
        What went wrong.

    Returns
    -------
    str
        ``"rushopt <command>: error: <ExceptionType>: <message>"``.

    Examples
    --------
    >>> error_message("status", ConnectionError("Redis at redis://h:1/0 is unreachable"))
    'rushopt status: error: ConnectionError: Redis at redis://h:1/0 is unreachable'
    """
    return f"rushopt {command}: error: {type(exc).__name__}: {exc}"


def port(value: str) -> int:
    """Parse a TCP port number, 1 to 65535.

    Parameters
    ----------
    value : str
        The option's text.

    Returns
    -------
    int
        The port.

    Raises
    ------
    argparse.ArgumentTypeError
        If ``value`` is not an integer in 1..65535.
    """
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {value!r}") from None
    if not 0 < number < 65536:
        raise argparse.ArgumentTypeError(f"must be in 1..65535, got {number}")
    return number


def server_port(value: str) -> int:
    """Parse the port of a server to start: like :func:`port`, or 0 for a free one.

    Parameters
    ----------
    value : str
        The option's text.

    Returns
    -------
    int
        The port, 0 meaning "pick a free one".

    Raises
    ------
    argparse.ArgumentTypeError
        If ``value`` is neither 0 nor a port number.
    """
    if value.strip() == "0":
        return 0
    return port(value)


def whole_number(minimum: int, what: str = "a whole number") -> Callable[[str], int]:
    """Return an argparse type accepting integers >= ``minimum``.

    Parameters
    ----------
    minimum : int
        The smallest value accepted.
    what : str, default "a whole number"
        What the values are, for the message about a value that is no integer.

    Returns
    -------
    callable
        ``parse(value) -> int``, raising :class:`argparse.ArgumentTypeError`
        for a value that is no integer or is below ``minimum``.
    """

    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not {what}: {value!r}") from None
        if number < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {number}")
        return number

    return parse


db_number = whole_number(0, "a database number")
"""Argparse type of a Redis database number (>= 0)."""

seconds = whole_number(1, "a whole number of seconds")
"""Argparse type of a duration in whole seconds (>= 1)."""


def duration(value: str) -> float:
    """Parse a duration in seconds (a number >= 0) for argparse.

    Raises
    ------
    argparse.ArgumentTypeError
        If ``value`` is not a finite number >= 0.
    """
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {value!r}") from None
    if not 0 <= number < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {value}")
    return number


def non_empty(value: str) -> str:
    """Accept any string but the empty one.

    Parameters
    ----------
    value : str
        The option's text.

    Returns
    -------
    str
        ``value``.

    Raises
    ------
    argparse.ArgumentTypeError
        If ``value`` is empty.
    """
    if not value:
        raise argparse.ArgumentTypeError("must not be empty")
    return value


def network_id(value: str) -> str:
    """Parse a network id, checked like :class:`~rushopt.core.controller.Rush` checks it.

    Parameters
    ----------
    value : str
        The option's text.

    Returns
    -------
    str
        The network id.

    Raises
    ------
    argparse.ArgumentTypeError
        If ``value`` is not a valid network id.
    """
    from rushopt.core.network import validate_network_id

    try:
        return validate_network_id(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def existing_file(value: str) -> str:
    """Accept the path of an existing file.

    Parameters
    ----------
    value : str
        The option's text.

    Returns
    -------
    str
        ``value``.

    Raises
    ------
    argparse.ArgumentTypeError
        If there is no file at ``value``.
    """
    if not os.path.isfile(value):
        raise argparse.ArgumentTypeError(f"no such file: {value!r}")
    return value


def existing_dir(value: str) -> str:
    """Accept the path of an existing directory.

    Parameters
    ----------
    value : str
        The option's text.

    Returns
    -------
    str
        ``value``.

    Raises
    ------
    argparse.ArgumentTypeError
        If there is no directory at ``value``.
    """
    if not os.path.isdir(value):
        raise argparse.ArgumentTypeError(f"no such directory: {value!r}")
    return value


def log_level(value: str) -> str:
    """Parse a logging level name, in any case.

    Parameters
    ----------
    value : str
        The option's text.

    Returns
    -------
    str
        The level's name in upper case, one of :data:`LOG_LEVELS`.

    Raises
    ------
    argparse.ArgumentTypeError
        If ``value`` names no level.
    """
    level = value.upper()
    if level not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(f"must be one of {', '.join(LOG_LEVELS)}, got {value!r}")
    return level
