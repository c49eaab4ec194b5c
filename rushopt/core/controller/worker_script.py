"""The command that starts a remote worker: :func:`worker_script` and :class:`WorkerScript`.

The password never appears as a command-line argument, where ``ps`` shows it
to every user of the worker's machine: the script passes it in the
``RUSHOPT_REDIS_PASSWORD`` environment variable (an assignment in front of the
command), and the ``repr`` of the script and every copy the library logs show
``<redacted>`` instead (see :class:`WorkerScript`).
"""

from __future__ import annotations

import logging
import shlex
import ssl
import sys
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from rushopt.core.config import RedisConfig
from rushopt.exceptions import warn

__all__ = [
    "PASSWORD_ENV",
    "TLS_KEY_PASSWORD_ENV",
    "TLS_OPTIONS",
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
    """A shell command that starts a worker; its ``repr`` hides the password.

    The string is the real command: ``str(script)``, f-strings, ``format``,
    concatenation, ``subprocess.run(script, shell=True)`` and writing it to a
    job file all give the real text, so it works wherever a command is
    expected. ``repr(script)`` (what a notebook or a debugger shows) and every
    copy the library logs show ``<redacted>`` where the password is
    (:attr:`redacted`). :meth:`reveal` returns the real command as a plain
    ``str``.

    Parameters
    ----------
    command : str
        The real command.
    redacted : str
        The same command with every secret replaced by ``<redacted>``.

    Examples
    --------
    >>> script = WorkerScript("PW='s3cret' run", "PW='<redacted>' run")
    >>> script
    WorkerScript("PW='<redacted>' run")
    >>> print(script)
    PW='s3cret' run
    >>> script.redacted
    "PW='<redacted>' run"
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
        return str.__str__(self)

    def __repr__(self) -> str:
        return f"WorkerScript({self.redacted!r})"

    def __reduce__(self) -> tuple[type[WorkerScript], tuple[str, str]]:
        return (type(self), (self.reveal(), self.redacted))


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
    if not url.startswith(("rediss://", "rediss+cluster://")):
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
    """Build the command of :meth:`~rushopt.core.Rush.create_worker_script` for any config.

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
        The command; its ``repr`` shows ``<redacted>`` for the passwords.

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
    # exec: the shell that reads the line is replaced by the worker, so no process keeps
    # the line (and the password in it) on its command line
    real = " ".join([*(f"{name}={shlex.quote(value)}" for name, value in env), "exec", command])
    shown = " ".join([*(f"{name}={shlex.quote(_REDACTED)}" for name, _ in env), "exec", command])
    return WorkerScript(real, shown)
