"""Random search."""

from __future__ import annotations

from typing import Any

from rushopt.optimizers.base import Optimizer

__all__ = ["RandomSearch"]


class RandomSearch(Optimizer):
    """Sample configurations uniformly (log-uniformly where ``log=True``).

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
        return out + self.space_.sample(n - len(out), self.rng_)  # space exhausted
