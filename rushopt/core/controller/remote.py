"""Remote workers: start arguments for workers on other machines (:class:`RemoteWorkers`).

A remote worker is ``python -m rushopt worker`` started by the user, on any
machine that can reach the network's Redis. :meth:`RemoteWorkers.create_worker_script`
builds that command; :meth:`RemoteWorkers.start_remote_workers` stores the start
arguments (loop, ``fun``, globals, packages, worker settings) under the
network's ``start_args`` key. A worker started before they exist registers in
state ``pre`` and waits for them; a worker started afterwards reads them at
once. Both may run the same script, any number of times.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from rushopt.core.config import WorkerSettings
from rushopt.core.controller.start_args import store_start_args
from rushopt.core.controller.worker_script import WorkerScript, worker_script
from rushopt.core.network import Network

__all__ = ["RemoteWorkers"]

logger = logging.getLogger(__name__)


class RemoteWorkers:
    """Remote-worker methods of one network.

    Parameters
    ----------
    network : Network
        The network's Redis boundary.
    """

    def __init__(self, network: Network) -> None:
        self.network = network

    def start_remote_workers(
        self,
        /,
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
        >>> from rushopt import Rush
        >>> rush = Rush(network_id="example-remote")
        >>> rush.start_remote_workers(fun=lambda x: {"y": 2 * x})
        >>> script = rush.create_worker_script()  # run it on each worker machine
        >>> "-m rushopt worker --network-id example-remote" in script
        True
        >>> rush.reset()
        """
        if worker_loop is None:
            from rushopt.core.worker.loops import worker_loop_default

            worker_loop = worker_loop_default
        settings = WorkerSettings.planned(
            heartbeat_period, heartbeat_expire, log_thresholds, log_buffer_size
        )
        network = self.network
        key = network.keys.start_args
        store_start_args(network, key, worker_loop, loop_args, globals, packages, settings)
        logger.info(
            "stored the start arguments of remote workers of network %r (%d waiting)",
            network.network_id,
            int(network.redis.scard(network.keys.worker_state("pre"))),
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
            A ``str`` holding the real command (``str()``, f-strings and
            ``subprocess`` use it); its ``repr()`` and the copy logged at
            INFO show the password as ``<redacted>``.

        Warns
        -----
        RushWarning
            If the config has redis-py keyword arguments that cannot be
            expressed on the command line (the worker connects without them).

        Examples
        --------
        >>> import subprocess
        >>> from rushopt import Rush
        >>> rush = Rush(network_id="example-script")
        >>> rush.start_remote_workers(fun=lambda x: {"y": 2 * x})
        >>> worker = subprocess.Popen(["sh", "-c", rush.create_worker_script()])
        >>> rush.wait_for_workers(1, timeout=60)
        >>> keys = rush.push_tasks([{"x": 21}])
        >>> rush.wait_for_tasks(keys, timeout=60)
        True
        >>> rush.fetch_finished_tasks()["y"].tolist()
        [42]
        >>> rush.stop_workers("terminate")
        >>> worker.wait(timeout=60)
        0
        >>> rush.reset()
        """
        script = worker_script(self.network.network_id, self.network.config, python)
        logger.info("worker script of network %r: %s", self.network.network_id, script.redacted)
        return script
