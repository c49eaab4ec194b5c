"""``rushopt dashboard``: a live web page of the networks on a Redis server.

* :mod:`rushopt.dashboard.reader`: :class:`NetworkReader`, the incremental view
  of one network (counters, workers, new finished tasks, new failures);
* :mod:`rushopt.dashboard.registry`: :class:`Dashboard`, the readers of one
  server shared by every request, and the list of networks;
* :mod:`rushopt.dashboard.app`: ``create_app(dashboard)``, the Starlette
  application (the page, its assets under ``/static/``, the JSON API under
  ``/api/``); it needs the ``dashboard`` extra
  (``pip install 'rushopt[dashboard]'``), the two modules above do not;
* ``static/``: ``index.html``, ``dashboard.js`` (plain JavaScript, SVG plots)
  and ``dashboard.css``, served from the package: no CDN, works offline.

The command itself is :mod:`rushopt.cli.dashboard`.
"""

from __future__ import annotations

from rushopt.dashboard.reader import NetworkGoneError, NetworkNotFoundError, NetworkReader
from rushopt.dashboard.registry import Dashboard

__all__ = ["Dashboard", "NetworkGoneError", "NetworkNotFoundError", "NetworkReader"]
