"""The progress bar of :func:`rushopt.tune`: tqdm in a terminal, tqdm's widget in Jupyter."""

from __future__ import annotations

import importlib
import math
import sys
from typing import Any

__all__ = ["ProgressBar"]


class ProgressBar:
    """Show evaluations done, the best value and the failures; silently off if it cannot.

    Parameters
    ----------
    total : int or None
        Evaluations of the run (None: unknown, a run stopped by its total budget).
    enabled : bool
        Whether the caller wants a bar. It is shown only when ``tqdm`` can be
        imported (``pip install rushopt[progress]``) and stderr is a terminal,
        or in a Jupyter notebook (tqdm's auto form: a widget, or text where
        ipywidgets is missing).
    initial : int, default 0
        Evaluations already done (a resumed run).
    desc : str, default "tune"
        The bar's description (tune puts the network id there).
    """

    def __init__(
        self, total: int | None, enabled: bool, initial: int = 0, desc: str = "tune"
    ) -> None:
        self._bar: Any = None
        self._n = initial
        notebook = _in_notebook()
        if not enabled or not (notebook or _is_terminal()):
            return
        try:
            module = importlib.import_module("tqdm.auto" if notebook else "tqdm")
        except ImportError:
            return
        options: dict[str, Any] = {"total": total, "initial": initial, "desc": desc}
        if not notebook:
            options["file"] = sys.stderr
        self._bar = module.tqdm(unit="eval", leave=True, **options)

    @property
    def active(self) -> bool:
        """Whether a bar is shown."""
        return self._bar is not None

    def update(self, n_done: int, best: float, n_failed: int) -> None:
        """Move the bar to ``n_done`` evaluations and show ``best`` and ``n_failed``."""
        if self._bar is None:
            return
        postfix = {"best": "-" if math.isnan(best) else f"{best:.6g}", "failed": n_failed}
        self._bar.set_postfix(postfix, refresh=False)
        self._bar.update(max(n_done - self._n, 0))
        self._n = max(n_done, self._n)

    def close(self) -> None:
        """Close the bar (no-op when none is shown)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _is_terminal() -> bool:
    stream = sys.stderr
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError):
        return False


def _in_notebook() -> bool:
    """Whether this process is a Jupyter kernel (IPython running under ipykernel)."""
    ipython = sys.modules.get("IPython")
    get = getattr(ipython, "get_ipython", None)
    shell = get() if callable(get) else None
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})
