"""Exceptions and warnings raised by rushopt.

Every error rushopt raises derives from :class:`RushError`; leaf classes also
derive from the builtin that callers would naturally catch, so
``except ValueError`` keeps working::

    RushError
    ├── ConfigError (ValueError)          invalid or over-determined configuration
    │   └── RedisServerNotFoundError      no redis-server binary to embed
    ├── InputError (ValueError)           invalid arguments to a public method
    ├── RedisUnavailableError (ConnectionError)   Redis could not be reached
    │   └── RedisAuthenticationError      Redis refused the credentials
    ├── RedisCommandError                 Redis refused a command (out of memory, read-only, ...)
    ├── RushTimeoutError (TimeoutError)   a wait exceeded its timeout
    ├── WorkerError                       worker lifecycle problems
    │   └── WorkerStartError              a local worker died before registering
    ├── TaskError
    │   └── TaskNotFoundError (KeyError)  no task hash at the given key
    └── OptimizerError
        ├── SearchSpaceError (ValueError) a bad search space or configuration
        └── EvaluationError (ValueError)  an objective returned no usable metric

    RushWarning (UserWarning)             discarded writes, unknown ids, tasks not retried
"""

from __future__ import annotations

import logging
import warnings

__all__ = [
    "ConfigError",
    "DuplicateTaskError",
    "EvaluationError",
    "InputError",
    "OptimizerError",
    "RedisAuthenticationError",
    "RedisCommandError",
    "RedisServerNotFoundError",
    "RedisUnavailableError",
    "RushError",
    "RushTimeoutError",
    "RushWarning",
    "SearchSpaceError",
    "TaskError",
    "TaskNotFoundError",
    "WorkerError",
    "WorkerStartError",
    "warn",
]

logger = logging.getLogger("rushopt")


class RushError(Exception):
    """Base class for all rushopt errors.

    .. versionadded:: 0.1.0
    """


class ConfigError(RushError, ValueError):
    """Invalid or over-determined configuration.

    .. versionadded:: 0.1.0
    """


class RedisServerNotFoundError(ConfigError):
    """No ``redis-server`` binary could be found for the embedded server.

    .. versionadded:: 0.1.0
    """


class InputError(RushError, ValueError):
    """Invalid arguments to a public method; the message names the argument.

    .. versionadded:: 0.1.0
    """


class RedisUnavailableError(RushError, ConnectionError):
    """Redis could not be reached; the message shows the URL with the password redacted.

    .. versionadded:: 0.1.0
    """


class RedisAuthenticationError(RedisUnavailableError):
    """Redis refused the password or ACL user; the message shows the URL with the password redacted.

    .. versionadded:: 0.2.0
    """


class RedisCommandError(RushError):
    """Redis answered a command with an error (out of memory, read-only replica, ...).

    .. versionadded:: 0.2.0
    """


class RushTimeoutError(RushError, TimeoutError):
    """A wait for workers or tasks exceeded its timeout.

    .. versionadded:: 0.1.0
    """


class WorkerError(RushError):
    """Base class for worker lifecycle errors.

    .. versionadded:: 0.1.0
    """


class WorkerStartError(WorkerError):
    """A local worker process exited before it registered with the network.

    .. versionadded:: 0.1.0
    """


class TaskError(RushError):
    """Base class for task errors.

    .. versionadded:: 0.1.0
    """


class DuplicateTaskError(TaskError):
    """A task's configuration was created before in the network (fingerprints).

    ``index`` is the position, in the push, of the first such task.

    .. versionadded:: 0.2.0
    """

    def __init__(self, message: str, index: int = 0) -> None:
        super().__init__(message)
        self.index = index


class TaskNotFoundError(TaskError, KeyError):
    """No task hash exists at the given key.

    .. versionadded:: 0.1.0
    """


class OptimizerError(RushError):
    """Base class for optimizer errors.

    .. versionadded:: 0.1.0
    """


class SearchSpaceError(OptimizerError, ValueError):
    """A search space definition or configuration is invalid; the message names the parameter.

    .. versionadded:: 0.1.0
    """


class EvaluationError(OptimizerError, ValueError):
    """The objective returned a value that is not a usable metric.

    .. versionadded:: 0.1.0
    """


class RushWarning(UserWarning):
    """A write that was discarded, an unknown worker id, or a task that was not retried.

    .. versionadded:: 0.1.0
    """


def warn(message: str, stacklevel: int = 3) -> None:
    """Emit a :class:`RushWarning` and log it (at WARNING, logger ``rushopt``).

    Parameters
    ----------
    message : str
        What happened.
    stacklevel : int, default 3
        As for :func:`warnings.warn`: 3 points at the caller of the public method.
    """
    logger.warning(message)
    warnings.warn(message, RushWarning, stacklevel=stacklevel)
