"""The dashboard's web application (ASGI, Starlette): :func:`create_app`.

Routes
------
``GET /``
    The page (``static/index.html``); its script and style under ``/static/``.
``GET /api/networks``
    ``{"server": url, "networks": [...]}``: every network on the server.
``GET /api/networks/<id>``
    One network: metadata, objective, tasks by state, workers, history size,
    best so far, failure counters.
``GET /api/networks/<id>/history?after=N``
    The finished tasks from row ``N`` on (a browser passes the number of rows
    it has, so each poll carries only new rows).
``GET /api/networks/<id>/failures?after=S``
    The newest failures (message, traceback) numbered above ``S``.

A network id may hold any character but braces; the page percent-encodes it
(``encodeURIComponent``), and the id is decoded from the raw path, so an id
with ``/`` works. Errors are JSON ``{"error": code, "message": text}``: 404
``not_found`` or ``gone`` (deleted while shown), 400 ``bad_request``, 503
``redis_unavailable``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import unquote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from rushopt.dashboard.reader import NetworkGoneError, NetworkNotFoundError
from rushopt.dashboard.registry import Dashboard
from rushopt.exceptions import RedisUnavailableError

__all__ = ["STATIC_DIR", "create_app"]

STATIC_DIR = Path(__file__).with_name("static")
"""The page's files: ``index.html``, ``dashboard.js``, ``dashboard.css``."""

_PREFIX = "/api/networks/"
_NO_STORE = {"Cache-Control": "no-store"}


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status, headers=_NO_STORE)


def _json(content: Any) -> JSONResponse:
    return JSONResponse(content, headers=_NO_STORE)


def _after(request: Request) -> int:
    value = request.query_params.get("after", "0")
    try:
        after = int(value)
    except ValueError:
        raise ValueError(f"after must be a whole number >= 0, got {value!r}") from None
    if after < 0:
        raise ValueError(f"after must be a whole number >= 0, got {value!r}")
    return after


def _path_parts(request: Request) -> list[str]:
    """Return the segments after ``/api/networks/``, percent-decoded one by one."""
    raw = request.scope.get("raw_path")
    path = raw.decode("latin-1") if isinstance(raw, bytes) else request.url.path
    path = path.split("?", 1)[0]
    return [unquote(part) for part in path[len(_PREFIX) :].split("/")]


def create_app(dashboard: Dashboard) -> Starlette:
    """Build the web application of a dashboard.

    Parameters
    ----------
    dashboard : Dashboard
        The readers of the server to show.

    Returns
    -------
    starlette.applications.Starlette
        The ASGI application; serve it with uvicorn.
    """

    def index(request: Request) -> Response:
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    def networks(request: Request) -> Response:
        try:
            listing = dashboard.networks()
        except RedisUnavailableError as exc:
            return _error(503, "redis_unavailable", str(exc))
        return _json({"server": dashboard.config.redacted_url, "networks": listing})

    def network(request: Request) -> Response:
        parts = _path_parts(request)
        network_id, resource = parts[0], "/".join(parts[1:])
        if not network_id:
            return _error(404, "not_found", "no network id in the path")
        try:
            after = _after(request)
            if resource == "":
                return _json(dashboard.network(network_id))
            if resource == "history":
                return _json(dashboard.history(network_id, after))
            if resource == "failures":
                return _json(dashboard.failures(network_id, after))
        except ValueError as exc:
            return _error(400, "bad_request", str(exc))
        except NetworkGoneError as exc:
            dashboard.forget_listing()
            return _error(404, "gone", str(exc))
        except NetworkNotFoundError as exc:
            return _error(404, "not_found", str(exc))
        except RedisUnavailableError as exc:
            return _error(503, "redis_unavailable", str(exc))
        return _error(404, "not_found", f"no such resource: {resource!r}")

    def unknown_api(request: Request) -> Response:
        return _error(404, "not_found", f"no such resource: {request.url.path!r}")

    routes = [
        Route("/", index),
        Route("/api/networks", networks),
        Route("/api/networks/{rest:path}", network),
        Route("/api/{rest:path}", unknown_api),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    return Starlette(routes=routes)
