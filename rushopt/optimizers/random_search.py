"""Random search."""

from __future__ import annotations

import logging
from typing import Any

from rushopt.optimizers.base import Optimizer
from rushopt.optimizers.parameters import Float

__all__ = ["RandomSearch"]

logger = logging.getLogger(__name__)


class RandomSearch(Optimizer):
    """Sample configurations uniformly (log-uniformly where ``log=True``).

    A configuration is never proposed twice. In a finite space (only
    integers and categoricals) whose configurations are all evaluated or
    pending, ``ask`` returns fewer configurations (none at all when nothing
    is left) and logs a warning; :func:`rushopt.tune` then stops, its
    reason ``"exhausted"``.

    Parameters
    ----------
    space : Space or dict
        The search space.
    seed : int, optional
        Seed; the same seed gives the same sequence of proposals.

    Examples
    --------
    >>> from rushopt.optimizers.space import Float
    >>> opt = RandomSearch({"x": Float(-1, 1)}, seed=0)
    >>> (config,) = opt.ask()
    >>> opt.tell(config, config["x"] ** 2)
    """

    needs_history = False  # proposals never depend on results

    def _propose(self, n: int) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for _ in range(100):  # never propose a configuration twice (matters for small spaces)
            for config in self.space_.sample(n - len(out), self.rng_):
                if self._is_new(config) and config not in out:
                    out.append(config)
            if len(out) == n:
                return out
        if any(isinstance(p, Float) for p in self.space_.params.values()):
            return out + self.space_.sample(n - len(out), self.rng_)  # floats: never the same
        from rushopt.optimizers.encoding import Encoding

        finite = Encoding(self.space_).enumerate()
        if finite is not None:
            left = [c for c in self.space_.decode(finite) if self._is_new(c) and c not in out]
            order = self.rng_.permutation(len(left))
            out += [left[int(i)] for i in order[: n - len(out)]]
        if len(out) < n:
            logger.warning(
                "every configuration of the finite search space is evaluated or pending: "
                "asked for %d, proposing %d",
                n,
                len(out),
            )
        return out
