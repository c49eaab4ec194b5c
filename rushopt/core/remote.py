"""Remote workers: worker scripts and start arguments for workers on other machines.

A remote worker is ``python -m rushopt worker`` started by the user, on any
machine that can reach the network's Redis. :meth:`RemoteWorkers.create_worker_script`
builds that command; :meth:`RemoteWorkers.start_remote_workers` stores the start
arguments (loop, ``fun``, globals, packages, worker settings) under the
network's ``start_args`` key. A worker started before they exist registers in
state ``pre`` and waits for them; a worker started afterwards reads them at
once. Both may run the same script, any number of times.

The password never appears as a command-line argument, where ``ps`` shows it
to every user of the worker's machine: the script passes it in the
``RUSHOPT_REDIS_PASSWORD`` environment variable (an assignment in front of the
command), and every printed, logged or ``repr``-ed copy of the script shows
``<redacted>`` instead (see :class:`WorkerScript`).
"""

from __future__ import annotations

import logging
import shlex
import ssl
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from rushopt.core.config import RedisConfig
from rushopt.core.network import NetworkBase, warn
from rushopt.core.settings import worker_settings

__all__ = [
    "PASSWORD_ENV",
    "TLS_KEY_PASSWORD_ENV",
    "TLS_OPTIONS",
    "RemoteWorkers",
    "WorkerScript",
    "split_credentials",
    "worker_script",
]

logger = logging.getLogger(__name__)

#: Environment variable that carries the Redis password to ``rushopt worker``
#: and ``rushopt server`` (so that it is not on a command line).
PASSWORD_ENV = "RUSHOPT_REDIS_PASSWORD"

#: Environment variable that carries the password of an encrypted TLS client key.
TLS_KEY_PASSWORD_ENV = "RUSHOPT_REDIS_TLS_KEY_PASSWORD"

#: ``rushopt worker`` TLS option for each redis-py ``ssl_*`` keyword argument it sets.
TLS_OPTIONS = {
    "ssl_ca_certs": "--tls-ca-cert",
    "ssl_ca_path": "--tls-ca-dir",
    "ssl_certfile": "--tls-cert",
    "ssl_keyfile": "--tls-key",
    "ssl_cert_reqs": "--tls-verify",
}

_REDACTED = "<redacted>"
_CERT_REQS = {ssl.CERT_NONE: "none", ssl.CERT_OPTIONAL: "optional", ssl.CERT_REQUIRED: "required"}


def split_credentials(url: str) -> tuple[str, str | None, str | None]:
    """Take the user name and password out of a Redis URL.

    Parameters
    ----------
    url : str
        A ``redis://``, ``rediss://`` or ``unix://`` URL.

    Returns
    -------
    (str, str or None, str or None)
        The URL without user info, the (unquoted) user name and the
        (unquoted) password; ``None`` for parts the URL does not have.
    """
    parts = urlsplit(url)
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    # redis-py also reads both from the query (unix:// URLs carry them there)
    query = []
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name == "password":
            password = password or value
        elif name == "username":
            username = username or value
        else:
            query.append((name, value))
    host = parts.netloc.rpartition("@")[2]
    # built by hand: urlunsplit drops the "//" of unix:///path, which redis-py needs
    bare = f"{parts.scheme}://{host}{parts.path}"
    if query:
        bare += f"?{urlencode(query)}"
    if parts.fragment:
        bare += f"#{parts.fragment}"
    return bare, username, password


def _with_username(url: str, username: str | None) -> str:
    if not username:
        return url
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{quote(username, safe='')}@{rest}"


def _url_query_parsers() -> Mapping[str, Any]:
    from redis import connection

    parsers: Mapping[str, Any] = getattr(connection, "URL_QUERY_ARGUMENT_PARSERS", {})
    return parsers


class WorkerScript(str):
    """A shell command that starts a worker; printed, it hides the password.

    The string data is the real command, so ``subprocess.run(script,
    shell=True)``, ``subprocess.Popen(["sh", "-c", script])``, writing it to a
    file or concatenating it all use the real text. Every form meant for
    people, ``str(script)``, ``repr(script)``, f-strings, ``format``,
    ``print`` and ``logging`` (``%s``), shows ``<redacted>`` where the password
    is. :meth:`reveal` returns the real command as a plain ``str``.

    Parameters
    ----------
    command : str
        The real command.
    redacted : str
        The same command with every secret replaced by ``<redacted>``.

    Examples
    --------
    >>> script = WorkerScript("PW='s3cret' run", "PW='<redacted>' run")
    >>> print(script)
    PW='<redacted>' run
    >>> script.reveal()
    "PW='s3cret' run"
    """

    redacted: str

    def __new__(cls, command: str, redacted: str) -> WorkerScript:
        """Create the script from its real and its redacted text."""
        self = super().__new__(cls, command)
        self.redacted = redacted
        return self

    def reveal(self) -> str:
        """Return the real command, password included, as a plain ``str``."""
        return str.__str__(self)

    def __str__(self) -> str:
        return self.redacted

    def __repr__(self) -> str:
        return f"WorkerScript({self.redacted!r})"

    def __format__(self, format_spec: str) -> str:
        return format(self.redacted, format_spec)

    def __reduce__(self) -> tuple[type[WorkerScript], tuple[str, str]]:
        return (type(self), (self.reveal(), self.redacted))


class RemoteWorkers(NetworkBase):
    """Remote-worker methods of a network (mixed into :class:`~rushopt.core.controller.Rush`)."""

    def start_remote_workers(
        self,
        globals: Mapping[str, Any] | Sequence[str] | None = None,
        packages: Sequence[str] | None = None,
        heartbeat_period: int | None = None,
        heartbeat_expire: int | None = None,
        log_thresholds: Mapping[str, str] | None = None,
        log_buffer_size: int = 0,
        worker_loop: Callable[..., Any] | None = None,
        **loop_args: Any,
    ) -> None:
        """Store the start arguments that remote workers run.

        Workers started with :meth:`create_worker_script` (or ``rushopt
        worker``) before this call wait in state ``pre`` and start running
        within about a second; workers started afterwards start at once.
        Calling it again replaces the start arguments for workers that start
        later; running workers keep theirs.

        Parameters
        ----------
        globals : dict or list of str, optional
            Objects placed in each worker's ``__main__`` namespace; a list of
            names is looked up in the caller's globals.
        packages : list of str, optional
            Modules each worker imports first (they must be installed on the
            worker's machine).
        heartbeat_period, heartbeat_expire : int, optional
            Whole seconds >= 1 between heartbeats and until a silent worker
            counts as lost (default expire: 3 x period). Remote workers need a
            heartbeat to be found lost by :meth:`detect_lost_workers` and to be
            killed by ``stop_workers("kill")``. When no period is given here,
            a worker uses the ``--heartbeat-period`` of its command line, if any.
        log_thresholds : dict, optional
            Logger name to level for records the workers write to the network.
        log_buffer_size : int, default 0
            Records a worker buffers before writing them.
        worker_loop : callable, default worker_loop_default
            The loop each worker runs, as ``worker_loop(rush=<RushWorker>, **loop_args)``.
        **loop_args
            Arguments of the loop, e.g. ``fun=`` and ``constants=``.

        Raises
        ------
        TypeError
            If the loop or one of its arguments cannot be pickled (the message
            names it).
        ValueError
            If a worker setting is invalid (the message names it).

        Examples
        --------
        >>> rush = Rush(network_id="example")  # doctest: +SKIP
        >>> rush.start_remote_workers(fun=lambda x: {"y": 2 * x})  # doctest: +SKIP
        >>> print(rush.create_worker_script())  # run it on each worker machine  # doctest: +SKIP
        """
        if worker_loop is None:
            from rushopt.core.loops import worker_loop_default

            worker_loop = worker_loop_default
        worker_options = worker_settings(
            heartbeat_period, heartbeat_expire, log_thresholds, log_buffer_size
        )
        # _store_start_args lives on WorkerManager, the sibling mixin of Rush
        self._store_start_args(  # type: ignore[attr-defined]
            worker_loop, loop_args, globals, packages, worker_options, self._keys.start_args
        )
        logger.info(
            "stored the start arguments of remote workers of network %r (%d waiting)",
            self.network_id,
            int(self._client.scard(self._keys.worker_state("pre"))),
        )

    def create_worker_script(self, python: str | None = None) -> WorkerScript:
        """Return a one-line shell command that starts one worker of this network.

        Run it, once per worker, on any machine that can reach this
        network's Redis and has rushopt installed; it only starts the worker,
        which then waits for :meth:`start_remote_workers` (or starts at once
        if that was called already). The command is quoted for POSIX shells,
        so network ids and passwords with spaces, ``$``, quotes or
        backslashes survive ``sh -c``. It looks like::

            RUSHOPT_REDIS_PASSWORD='...' /usr/bin/python3 -m rushopt worker
                --network-id 'my net' --url 'redis://10.0.0.5:6379/0'

        (shown on two lines, returned on one). The password travels in the
        ``RUSHOPT_REDIS_PASSWORD`` environment variable, not on the command
        line, so ``ps`` on the worker's machine does not show it. The ACL user name stays in the
        URL; TLS settings (``rediss://`` and the ``ssl_*`` keyword arguments
        of the config) become ``--tls-*`` options; the ``db`` and connection
        tuning keyword arguments that redis-py reads from a URL query go
        into the URL's query.

        The host is the one of this controller's URL. If that is a loopback
        address (``127.0.0.1``, ``localhost``, e.g. the embedded server), the
        worker must run on this machine; for workers on other machines,
        connect the controller through an address they can reach, e.g. of a
        server started with ``rushopt server --bind <address> --password ...``.

        Parameters
        ----------
        python : str, optional
            The Python interpreter on the worker's machine; default: this
            interpreter (``sys.executable``), right when the worker machines
            share its installation. Pass e.g. ``"python3"`` otherwise.

        Returns
        -------
        WorkerScript
            A ``str`` whose data is the real command; ``str()``, ``repr()``,
            f-strings and logging show the password as ``<redacted>``, and
            :meth:`WorkerScript.reveal` returns the real text. The redacted
            form is also logged at INFO.

        Warns
        -----
        RushWarning
            If the config has redis-py keyword arguments that cannot be
            expressed on the command line (the worker connects without them).

        Examples
        --------
        >>> script = rush.create_worker_script()  # doctest: +SKIP
        >>> subprocess.Popen(["sh", "-c", script])  # doctest: +SKIP
        """
        script = worker_script(self.network_id, self.config, python)
        logger.info("worker script of network %r: %s", self.network_id, script)
        return script


def _url_with_query(url: str, kwargs: dict[str, Any]) -> str:
    """Move the keyword arguments redis-py also reads from a URL query into ``url``."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    has_db = "db" in query or (parts.scheme != "unix" and parts.path.strip("/").isdigit())
    parsers = _url_query_parsers()
    added: dict[str, str] = {}
    for name in list(kwargs):
        value = kwargs[name]
        if name == "db" and has_db:
            del kwargs[name]  # the URL's db wins, for the controller too
        elif (
            name in parsers
            and not name.startswith("ssl_")  # those go to --tls-* options
            and isinstance(value, (bool, int, float, str))
        ):
            if name not in query:
                added[name] = str(value)
            del kwargs[name]
    if not added:
        return url
    separator = "&" if parts.query else "?"
    base, _, fragment = url.partition("#")
    return base + separator + urlencode(added) + (f"#{fragment}" if fragment else "")


def _tls_args(url: str, kwargs: dict[str, Any]) -> list[str]:
    """Turn the ``ssl_*`` keyword arguments into ``--tls-*`` options (removing them)."""
    args: list[str] = []
    if not url.startswith("rediss://"):
        return args
    for name, option in TLS_OPTIONS.items():
        value = kwargs.pop(name, None)
        if value is None:
            continue
        if name == "ssl_cert_reqs" and not isinstance(value, str):
            value = _CERT_REQS.get(value, value)
        args += [option, str(value)]
    if "ssl_check_hostname" in kwargs and not kwargs.pop("ssl_check_hostname"):
        args.append("--tls-no-check-hostname")
    return args


def worker_script(network_id: str, config: RedisConfig, python: str | None = None) -> WorkerScript:
    """Build the command of :meth:`RemoteWorkers.create_worker_script` for any config.

    Parameters
    ----------
    network_id : str
        The network the worker joins.
    config : RedisConfig
        How the controller reaches Redis; the worker connects the same way.
    python : str, optional
        The worker machine's Python interpreter (default: ``sys.executable``).

    Returns
    -------
    WorkerScript
        The command; printed, it shows ``<redacted>`` for the passwords.

    Warns
    -----
    RushWarning
        If ``config`` has keyword arguments the command line cannot express.
    """
    url, username, password = split_credentials(config.url)
    kwargs = {k: v for k, v in config.redis_kwargs.items() if v is not None}
    # redis-py lets what the URL says win over keyword arguments; do the same
    username = username or kwargs.pop("username", None)
    password = password or kwargs.pop("password", None)
    kwargs.pop("username", None)
    kwargs.pop("password", None)
    url = _with_username(_url_with_query(url, kwargs), username)

    env: list[tuple[str, str]] = []
    if password:
        env.append((PASSWORD_ENV, str(password)))
    if kwargs.get("ssl_password"):
        env.append((TLS_KEY_PASSWORD_ENV, str(kwargs.pop("ssl_password"))))
    kwargs.pop("ssl_password", None)
    args = [
        python if python is not None else sys.executable,
        "-m",
        "rushopt",
        "worker",
        # "--network-id -x" would read as a missing value followed by an option
        *(
            [f"--network-id={network_id}"]
            if network_id.startswith("-")
            else ["--network-id", network_id]
        ),
        "--url",
        url,
    ]
    args += _tls_args(url, kwargs)
    if kwargs:
        warn(
            f"create_worker_script: the redis keyword arguments {sorted(kwargs)} cannot be "
            "passed on the command line; the workers connect without them",
            stacklevel=4,
        )
    command = " ".join(shlex.quote(a) for a in args)
    real = " ".join(f"{name}={shlex.quote(value)}" for name, value in env)
    shown = " ".join(f"{name}={shlex.quote(_REDACTED)}" for name, _ in env)
    return WorkerScript(f"{real} {command}".lstrip(), f"{shown} {command}".lstrip())
