"""Optuna's samplers behind rushopt's ask/tell interface, as baselines for benchmarks.

:class:`OptunaTPE` runs Optuna's TPE sampler (or, with ``sampler="gp"``, its
GPSampler, which needs PyTorch). Optuna is optional (``pip install
rushopt[bench]``); this module imports it only when an :class:`OptunaTPE`
starts its first study.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rushopt.optimizers.base import Optimizer, config_key
from rushopt.optimizers.space import Categorical, Float, Space

if TYPE_CHECKING:
    import optuna

__all__ = ["OptunaTPE", "optuna_distributions"]


def optuna_distributions(space: Space) -> dict[str, optuna.distributions.BaseDistribution]:
    """Map every parameter of ``space`` to the matching Optuna distribution.

    ``Float`` becomes ``FloatDistribution(low, high, log=...)``, ``Int``
    ``IntDistribution(low, high, log=...)`` and ``Categorical``
    ``CategoricalDistribution(choices)``. Conditions have no Optuna
    counterpart: a caller suggests only the parameters that are active.

    Parameters
    ----------
    space : Space
        The search space.

    Returns
    -------
    dict
        Parameter name to distribution, in the space's order.

    Raises
    ------
    ImportError
        If Optuna is not installed.
    """
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    out: dict[str, optuna.distributions.BaseDistribution] = {}
    for name, param in space.params.items():
        if isinstance(param, Categorical):
            out[name] = CategoricalDistribution(param.choices)
        elif isinstance(param, Float):
            out[name] = FloatDistribution(param.low, param.high, log=param.log)
        else:
            out[name] = IntDistribution(int(param.low), int(param.high), log=param.log)
    return out


def _suggest(trial: optuna.Trial, name: str, dist: optuna.distributions.BaseDistribution) -> Any:
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(name, dist.choices)
    if isinstance(dist, FloatDistribution):
        return trial.suggest_float(name, dist.low, dist.high, log=dist.log)
    return trial.suggest_int(name, dist.low, dist.high, log=dist.log)  # type: ignore[attr-defined]


class OptunaTPE(Optimizer):
    """Optuna's :class:`~optuna.samplers.TPESampler` with rushopt's ask/tell interface.

    Each :meth:`ask` starts an Optuna trial and suggests the parameters in
    the space's dependency order, only those whose condition holds, so a
    conditional space reaches TPE as Optuna's define-by-run spaces do.

    Parameters
    ----------
    space : Space or dict
        The search space.
    seed : int, optional
        Seed of the sampler; the same seed gives the same proposals.
    sampler_kwargs : dict, optional
        More arguments of the sampler (e.g. ``{"multivariate": True}``).
    sampler : {"tpe", "gp"}, default "tpe"
        ``TPESampler`` or ``GPSampler`` (which needs PyTorch; Optuna's
        GPSampler ignores conditions, and samples parameters outside its
        fixed search space at random).

    Attributes
    ----------
    study_ : optuna.Study
        The in-memory study, created on the first ``ask`` or ``tell``.

    Raises
    ------
    ImportError
        From the first ``ask`` or ``tell`` if Optuna is not installed.
    """

    def __init__(
        self,
        space: Space | Mapping[str, Any],
        seed: int | None = None,
        sampler_kwargs: Mapping[str, Any] | None = None,
        sampler: str = "tpe",
    ) -> None:
        super().__init__(space, seed=seed)
        self.sampler_kwargs = sampler_kwargs
        self.sampler = sampler

    def _ensure_state(self) -> None:
        super()._ensure_state()
        if not hasattr(self, "study_"):
            import optuna

            kinds = {"tpe": optuna.samplers.TPESampler, "gp": optuna.samplers.GPSampler}
            if self.sampler not in kinds:
                raise ValueError(f"sampler must be one of {list(kinds)}, got {self.sampler!r}")
            sampler = kinds[self.sampler](seed=self.seed, **(self.sampler_kwargs or {}))
            verbosity = optuna.logging.get_verbosity()
            optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "new study" line per run
            try:
                self.study_ = optuna.create_study(direction="minimize", sampler=sampler)
            finally:
                optuna.logging.set_verbosity(verbosity)
            self.distributions_ = optuna_distributions(self.space_)
            # open trials by configuration; a list, as TPE may propose a configuration twice
            self._trials: dict[tuple[tuple[str, str], ...], list[optuna.Trial]] = {}

    def _propose(self, n: int) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for _ in range(n):
            trial = self.study_.ask()
            config: dict[str, Any] = {}
            for name in self.space_.names:  # parents before children
                if self.space_.is_active(name, config):
                    config[name] = _suggest(trial, name, self.distributions_[name])
            config = {name: config[name] for name in self.space_.params if name in config}
            self._trials.setdefault(config_key(config), []).append(trial)
            out.append(config)
        return out

    def tell(
        self,
        params: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        value: float | Sequence[float | None] | None,
    ) -> None:
        """Record evaluated configurations and pass them on to the study.

        Parameters
        ----------
        params : dict or list of dict
            One configuration or several; a configuration that was not asked
            for is added to the study as a finished trial.
        value : float, None, or list of them
            The metric to minimize; ``None`` or ``nan`` fails the trial.
        """
        n_before = self.n_told
        super().tell(params, value)
        from optuna.trial import TrialState, create_trial

        for config, v in zip(self.configs_[n_before:], self.values_[n_before:], strict=True):
            open_trials = self._trials.get(config_key(config))
            trial = open_trials.pop(0) if open_trials else None
            failed = math.isnan(v)
            if trial is not None:
                if failed:
                    self.study_.tell(trial, state=TrialState.FAIL)
                else:
                    self.study_.tell(trial, v)
                continue
            self.study_.add_trial(
                create_trial(
                    params=config,
                    distributions={name: self.distributions_[name] for name in config},
                    value=None if failed else v,
                    state=TrialState.FAIL if failed else TrialState.COMPLETE,
                )
            )
