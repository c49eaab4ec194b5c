"""Bayesian optimization with a mixed-variable Gaussian-process (or random-forest) surrogate.

One :class:`BayesianOptimization` proposes configurations in three phases:

1. **Initial design.** While fewer than ``n_initial`` configurations are told
   or pending, it hands out points of a scrambled Sobol sequence (or uniform
   random points). On a rush network (:meth:`join_network`) the design is
   the network's: the ``i``-th initial point of the run is the ``i``-th
   point of one Sobol sequence seeded by the run, whichever worker takes it,
   the index coming from an atomic counter.
2. **Fallback.** While fewer than two evaluations have succeeded (failed ones,
   told as ``None``/``nan``/``inf``, are never trained on), it samples randomly.
3. **Model-based.** It fits the surrogate on the successful evaluations,
   imputes every pending configuration at the model's predicted mean
   ("kriging believer"; configurations proposed earlier in the same ``ask``
   count as pending), refits on both, and picks the best candidate of the
   acquisition function that was neither evaluated nor pending. When the
   Gaussian process fits a noise variance above 1% of its signal variance,
   the incumbent of expected improvement, and the points the acquisition
   optimizer searches around, are those of the lowest posterior mean among
   the evaluated and pending configurations, not of the lowest observed
   value: on a noisy objective (a cross-validation score) the lowest value
   is partly luck, and improving on it by more than the fitted noise sends
   EI to wherever sigma is largest, the corners of the box.

The Gaussian process works on every kind of space: the kernel features of
:mod:`rushopt.optimizers.features` (ARD Matérn 5/2 over numeric parameters
in the unit cube, log-scaled ones in log space, an overlap kernel for
categoricals, conditional parameters that do not pollute the kernel when
inactive), fitted on targets standardized and, when skewed, power-warped
(:func:`~rushopt.optimizers.targets.warp_targets`). The acquisition is
optimized by :func:`~rushopt.optimizers.acquisition_search.search`:
quasi-random and local candidates, then rounds of L-BFGS-B over the numeric
parameters interleaved with moves to categorical and integer neighbors. A
finite space small enough to enumerate is scored whole; once all of its
configurations are evaluated or pending, ``ask`` returns fewer
configurations (none at all when nothing is left) and logs a warning: an
optimizer never proposes a configuration twice.

Refitting the Gaussian process's hyperparameters costs ``O(n^3)`` per
likelihood evaluation, so they are re-optimized on every ask only while at
most 20 evaluations succeeded; afterwards from the previous optimum every
``min(20, n // 10)`` new evaluations, with random restarts again whenever ``n``
has doubled since the last restarts, and in between only the Cholesky factor
is recomputed. On a rush network that schedule is the network's, not each
worker's: a worker that fitted offers its hyperparameters, ranked by its
``n``, as a shared value (one script keeps the highest rank), and a worker
about to refit first takes the shared ones when they were fitted on more
results than its own; it then fits only if those are due too, and only if it
claims the refit (another script: of the workers due at about the same
``n``, one fits and the others condition on the shared fit; up to 20
successes that is one fit per ``n`` in the network). So with ``W``
workers the network fits about as often as one worker would, where each
worker refitting on its own made every ask of a large network a refit (its
``n`` grows by about ``W`` between two of its asks): with 32 workers on 2
cores that was most of the CPU the workers spent.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from rushopt.optimizers.base import Optimizer, SharedValues, unique_configs
from rushopt.optimizers.encoding import Encoding
from rushopt.optimizers.features import KernelFeatures, SpaceModel
from rushopt.optimizers.parameters import Float, Int, Param
from rushopt.optimizers.space import Space
from rushopt.optimizers.targets import warp_targets

if TYPE_CHECKING:  # the model stack (scipy; sklearn for the forest) is imported at the first fit
    from rushopt.optimizers.forest import RandomForestSurrogate
    from rushopt.optimizers.gaussian_process import GaussianProcess

logger = logging.getLogger(__name__)

__all__ = ["BayesianOptimization", "surrogate_modules"]

KAPPA_MEAN = 1.96  # mean of the stochastic LCB's exploration weight (ADBO)
KAPPA_DECAY_RATE = 0.1  # kappa_t = kappa * exp(-rate * (t mod period)), as in ADBO / mlr3mbo
KAPPA_DECAY_PERIOD = 25

_SURROGATES = ("auto", "gp", "rf")
_ACQUISITIONS = ("auto", "ei", "lcb", "stochastic_lcb")
_DESIGNS = ("sobol", "random")
_MODES = ("decentralized", "centralized")
_FULL_FIT_UNTIL = 20  # re-optimize GP hyperparameters on every ask up to this many successes
# with "auto", the first workers of a network use EI (imputed pending points spread them out
# enough: with 4 workers, 3 on stochastic LCB lost the best category of the mixed problem in
# 3 runs of 5), later ones ADBO's stochastic LCB
_EI_WORKERS = 4
# fitted noise variance, relative to the signal's, above which the GP's incumbent is its lowest
# posterior mean (below, the lowest value: the two nearly coincide, and noise-free runs such
# as levy4's keep their trajectories)
_NOISY = 1e-2
#: Name of the shared value holding the network's GP hyperparameters (join_network).
_SHARED_FIT = "gp_hyperparameters"
_SHARED_CLAIM = "gp_hyperparameters_claim"  # the n of the latest refit a worker claimed
_WARP_AUTO = False  # what input_warping="auto" means (see the docstring for why)
#: What a model-based proposal imports, whichever the surrogate (see model_modules).
_MODEL_MODULES = ("rushopt.optimizers.gaussian_process", "rushopt.optimizers.acquisition_search")


def surrogate_modules(surrogate: str) -> tuple[str, ...]:
    """Return the modules the model-based proposals of a ``surrogate`` import.

    Parameters
    ----------
    surrogate : {"auto", "gp", "rf"}
        As :class:`BayesianOptimization` takes it.

    Returns
    -------
    tuple of str
        Module names; ``module:function`` entries name a warm-up to call once.
    """
    if surrogate == "rf":  # scikit-learn's forest
        return (*_MODEL_MODULES, "sklearn.ensemble", "rushopt.optimizers.forest")
    return (*_MODEL_MODULES, "rushopt.optimizers.gaussian_process:warm_up")


def _acquisition_error(value: Any) -> ValueError:
    return ValueError(f"acquisition must be one of {list(_ACQUISITIONS)}, got {value!r}")


class BayesianOptimization(Optimizer):
    """Bayesian optimization: a surrogate model proposes where to evaluate next.

    Parameters
    ----------
    space : Space or dict
        The search space.
    surrogate : {"auto", "gp", "rf"}, default "auto"
        ``"gp"``: a Gaussian process
        (:class:`~rushopt.optimizers.gaussian_process.GaussianProcess`) on
        the mixed-variable kernel features (Matérn 5/2 with automatic
        relevance determination per parameter, hyperparameters fitted by
        marginal likelihood with priors); ``"rf"``:
        :class:`~rushopt.optimizers.surrogates.RandomForestSurrogate`;
        ``"auto"``: the Gaussian process, for every kind of space: its median
        final regret was lower than the forest's on all 14 problems of
        ``benchmarks/optimizers.py`` (numeric, ill-conditioned, multimodal,
        mixed and conditional; 10 seeds), by 1.05x (mixed_interaction) to
        360x (ellipsoid10).
    acquisition : {"auto", "ei", "lcb", "stochastic_lcb"}, default "auto"
        ``"ei"``: expected improvement, maximized in log space; ``"lcb"``:
        lower confidence bound ``mu - 1.96 sigma``; ``"stochastic_lcb"``: as
        in ADBO (Egele et al. 2023), every optimizer instance (one per
        worker in decentralized mode) draws its own weight ``kappa`` from an
        exponential distribution with mean 1.96, and uses
        ``kappa * exp(-0.1 * (t mod 25))`` for its ``t``-th model-based
        proposal, so that workers explore to different degrees and each
        periodically turns greedy. ``"auto"``: ``"ei"``, except for the
        fifth and later workers of a decentralized network
        (:meth:`join_network` with ``index >= 4``), which use
        ``"stochastic_lcb"``, so that a network of many workers has a few
        greedy workers and others exploring to different degrees.
    n_initial : int, optional
        Size of the initial design; default ``min(max(10, 2 d + 2), 30)``
        for ``d`` parameters.
    initial_design : {"sobol", "random"}, default "sobol"
        Scrambled Sobol points or uniform random points.
    mode : {"decentralized", "centralized"}, default "decentralized"
        How :func:`rushopt.tune` runs the optimizer (see the spec): each
        worker proposing for itself, or the controller proposing for all.
    seed : int, optional
        Seed of the optimizer's random stream; the same seed gives the same
        proposals for the same sequence of tells.
    fixed : dict, optional
        Numeric parameters held at a value in every proposal (a *context*):
        the surrogate learns from evaluations at any value of them, but the
        acquisition is optimized over the other parameters with these at
        the given values, and its incumbent is the lowest posterior mean of
        the evaluated (and pending) configurations moved to them. This is
        how a multi-fidelity surrogate with the budget as an input proposes
        for the full budget: results at small budgets inform the model
        without their own optimum, which a deceptive objective puts
        elsewhere, drawing the proposals there.
    input_warping : bool or "auto", default "auto"
        Warp every always-active numeric parameter by a Kumaraswamy CDF
        fitted with the GP's other hyperparameters (``GaussianProcess(warp=)``),
        so that a function that changes faster at one end of a parameter's
        range than at the other is easier to model. ``"auto"``: off. On the
        14 problems of ``benchmarks/optimizers.py`` (10 seeds) the warp cut
        the median final regret of the separable ellipsoids 3.4-3.6 times
        and changed little on ackley, hartmann6 and styblinski, but doubled
        it on levy4 and raised it 1.3-1.5 times on rastrigin4, rosenbrock4
        and the rotated ellipsoid; without it BO is already at or below
        TPE's and GPSampler's regret on all 14. Ignored by the random forest.

    Attributes
    ----------
    surrogate_ : GaussianProcess or RandomForestSurrogate
        The surrogate, refitted on every model-based proposal.
    model_modules : tuple of str
        What the surrogate imports (see :attr:`Optimizer.model_modules`).
    acquisition_ : str
        The acquisition in use (``"auto"`` resolved).
    n_initial_ : int
        Size of the initial design.
    initial_design_ : list of dict
        The initial design's configurations (distinct; fewer than
        ``n_initial`` in a small finite space).
    kappa_ : float or None
        Exploration weight of the confidence bound before decay (drawn per
        instance for ``"stochastic_lcb"``); None for ``"ei"``.

    Raises
    ------
    ValueError
        From :meth:`ask`, naming the argument, when one is invalid.

    Examples
    --------
    >>> from rushopt.optimizers.space import Float
    >>> opt = BayesianOptimization({"x": Float(-2, 2)}, seed=0)
    >>> for _ in range(15):
    ...     (config,) = opt.ask()
    ...     opt.tell(config, (config["x"] - 0.5) ** 2)
    """

    def __init__(
        self,
        space: Space | Mapping[str, Param],
        surrogate: str = "auto",
        acquisition: str = "auto",
        n_initial: int | None = None,
        initial_design: str = "sobol",
        mode: str = "decentralized",
        seed: int | None = None,
        fixed: Mapping[str, float] | None = None,
        input_warping: bool | str = "auto",
    ) -> None:
        super().__init__(space, seed=seed)
        self.surrogate = surrogate
        self.acquisition = acquisition
        self.n_initial = n_initial
        self.initial_design = initial_design
        self.mode = mode
        self.fixed = fixed
        self.input_warping = input_warping

    # ------------------------------------------------------------ setup
    def _check_params(self) -> None:
        if not isinstance(self.surrogate, str) or self.surrogate not in _SURROGATES:
            raise ValueError(
                f"surrogate must be one of {list(_SURROGATES)}, got {self.surrogate!r}"
            )
        if not isinstance(self.acquisition, str) or self.acquisition not in _ACQUISITIONS:
            raise _acquisition_error(self.acquisition)
        if self.n_initial is not None and (
            isinstance(self.n_initial, bool)
            or not isinstance(self.n_initial, (int, np.integer))
            or self.n_initial < 1
        ):
            raise ValueError(
                f"n_initial must be a positive integer or None, got {self.n_initial!r}"
            )
        if not isinstance(self.initial_design, str) or self.initial_design not in _DESIGNS:
            raise ValueError(
                f"initial_design must be one of {list(_DESIGNS)}, got {self.initial_design!r}"
            )
        if not isinstance(self.mode, str) or self.mode not in _MODES:
            raise ValueError(f"mode must be one of {list(_MODES)}, got {self.mode!r}")
        if not (isinstance(self.input_warping, bool) or self.input_warping == "auto"):
            raise ValueError(
                f"input_warping must be True, False or 'auto', got {self.input_warping!r}"
            )
        self._fixed_columns()

    def _fixed_columns(self) -> dict[int, float]:
        """Check ``fixed`` and return its encoded columns and their values."""
        if self.fixed is None:
            return {}
        if not isinstance(self.fixed, Mapping):
            raise ValueError(f"fixed must be a dict or None, got {self.fixed!r}")
        space = self.space_
        out = {}
        for name, value in self.fixed.items():
            param = space.params.get(name)
            if not isinstance(param, (Float, Int)) or param.when:
                raise ValueError(
                    f"fixed: {name!r} is not an unconditional numeric parameter of the space"
                )
            value = param.validate(name, value)
            out[space.columns(name).start] = param.to_unit(value)
        return out

    def join_network(
        self,
        index: int,
        claim: Callable[[], int] | None = None,
        design_seed: int | None = None,
        shared: SharedValues | None = None,
    ) -> None:
        """Take part in a decentralized network as its loop number ``index``.

        With ``claim`` and ``design_seed`` the initial design is the
        network's: the ``i``-th claimed index gives the ``i``-th point of one
        scrambled Sobol sequence seeded by ``design_seed``, on whichever
        worker claims it, until ``n_initial`` indices are claimed. With
        ``index >= 4`` and ``acquisition="auto"``, the stochastic LCB is used.
        With ``shared``, the Gaussian process's hyperparameters are the
        network's (module docstring): a worker fits them only when the latest
        fit of any worker is due for a refit, and offers its fit to the others.

        Parameters
        ----------
        index : int
            The loop's index on the network (0 for the first worker).
        claim : callable, optional
            ``claim()`` returns the next network-wide index of the initial
            design (0, 1, ...), atomically; with it (and ``design_seed``) the
            initial design is one Sobol sequence for the whole network.
        design_seed : int, optional
            Seed of the network's Sobol sequence, the same on every worker.
        shared : SharedValues, optional
            Where the workers share the hyperparameters (the worker itself).
        """
        self._network = (int(index), claim, design_seed)
        self.share_fits(shared)

    def share_fits(self, shared: SharedValues | None) -> None:
        """Share the Gaussian process's hyperparameter fits through ``shared`` (module docstring).

        :meth:`join_network` does it; a loop that runs this optimizer inside
        another one (ASHA's BO base) calls it alone.

        Parameters
        ----------
        shared : SharedValues or None
            The network's shared values (the worker itself); ``None`` stops sharing.
        """
        self._shared = shared

    def _setup(self) -> None:
        space = self.space_
        self._floats = {
            name: (float(p.low), float(p.high))
            for name, p in space.params.items()
            if isinstance(p, Float)
        }
        self._fixed = self._fixed_columns()
        self._fixed_values = {
            name: space.params[name].validate(name, value)
            for name, value in (self.fixed or {}).items()
        }
        index, claim, design_seed = getattr(self, "_network", (None, None, None))
        kind = self.surrogate
        if kind == "auto":
            kind = "gp"
        acquisition = self.acquisition
        if acquisition == "auto":
            many = self.mode == "decentralized" and index is not None and index >= _EI_WORKERS
            acquisition = "stochastic_lcb" if many else "ei"
        self.acquisition_ = acquisition
        self.kappa_: float | None = {
            "ei": None,
            "lcb": KAPPA_MEAN,
            "stochastic_lcb": float(self.rng_.exponential(KAPPA_MEAN)),
        }[acquisition]
        d = len(space)
        self.n_initial_ = int(self.n_initial or min(max(10, 2 * d + 2), 30))
        self._claim = claim if design_seed is not None else None
        design_rng = np.random.default_rng(design_seed) if self._claim else self.rng_
        if self.initial_design == "sobol":
            design = self._clamp(space.sobol(self.n_initial_, design_rng))
        else:
            design = self._clamp(space.sample(self.n_initial_, design_rng))
        # distinct points, so that distinct claimed indices never give the same point
        self.initial_design_ = unique_configs(design)
        self._design_done = False
        self.encoding_ = Encoding(space)
        self.features_ = KernelFeatures(space)
        self._gp = kind == "gp"
        self._surrogate: GaussianProcess | RandomForestSurrogate | None = None
        self.n_model_proposals_ = 0
        self._finite_configs: list[dict[str, Any]] | None = None
        self._warned_exhausted = False
        self._X_cache = np.empty((0, space.n_dims))
        self._gp_restart_n: int | None = None  # successes at the last fit with restarts
        self._gp_fit_n = 0  # successes at the last hyperparameter fit

    @property
    def kappa(self) -> float | None:
        """The confidence bound's exploration weight for the next proposal (None for EI)."""
        if getattr(self, "kappa_", None) is None:
            return None
        if self.acquisition_ != "stochastic_lcb":
            return self.kappa_
        t = self.n_model_proposals_ % KAPPA_DECAY_PERIOD
        return float(self.kappa_ * math.exp(-KAPPA_DECAY_RATE * t))  # type: ignore[operator]

    @property
    def surrogate_(self) -> GaussianProcess | RandomForestSurrogate:
        """The surrogate model, made on first use.

        Its module imports scipy (and scikit-learn for the forest), which
        takes seconds and the initial design does not need: a worker evaluates
        its first points meanwhile.
        """
        if self._surrogate is None:
            if self._gp:
                from rushopt.optimizers.gaussian_process import GaussianProcess

                warp = self.input_warping
                if warp == "auto":
                    warp = _WARP_AUTO
                self._surrogate = GaussianProcess(
                    warm_start=True,
                    groups=self.features_.groups,
                    warp=self.features_.numeric if warp else None,
                )
            else:
                from rushopt.optimizers.forest import RandomForestSurrogate

                self._surrogate = RandomForestSurrogate()
        return self._surrogate

    @property
    def model_modules(self) -> tuple[str, ...]:  # type: ignore[override]
        """The modules of the surrogate and of the acquisition search (see the base class)."""
        return surrogate_modules(self.surrogate)

    # ------------------------------------------------------------ proposals
    def _propose(self, n: int) -> list[dict[str, Any]]:
        self._check_params()
        if not hasattr(self, "initial_design_"):
            self._setup()
        out: list[dict[str, Any]] = []
        n_success = int(np.isfinite(np.asarray(self.values_, dtype=float)).sum())
        batch: _Batch | None = None
        limited = False  # BLAS limited to one thread, once a model is fitted
        with contextlib.ExitStack() as models, np.errstate(all="ignore"):
            for _ in range(n):
                config: dict[str, Any] | None = None
                if self._claim is not None:
                    if not self._design_done:
                        config = self._claimed_point(out)
                elif len(self.configs_) + len(self.pending_) + len(out) < self.n_initial_:
                    config = self._initial_point(out)
                if config is None and n_success >= 2:
                    if not limited:  # the model stack's first use (the surrogate_ docstring)
                        from rushopt.optimizers.linalg import single_blas_thread

                        models.enter_context(single_blas_thread())
                        limited = True
                    try:
                        if batch is None:
                            batch = _Batch(*self._fit_base(), self.space_.n_dims)
                        self._impute(batch, [*self.pending_, *out])
                        config = self._model_point(batch, out)
                    except np.linalg.LinAlgError:
                        config = None
                    self.n_model_proposals_ += 1
                if config is None:
                    config = self._random_point(out)
                if config is None:  # a finite space, all of it evaluated or pending
                    self._warn_exhausted()
                    break
                out.append(config)
        return out

    def _warn_exhausted(self) -> None:
        if not self._warned_exhausted:
            self._warned_exhausted = True
            logger.warning(
                "every configuration of the finite search space is evaluated or pending: "
                "no new configuration to propose"
            )

    def _clamp(self, configs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Clamp floats into their bounds, and set the ``fixed`` parameters.

        ``Float.from_unit`` can overshoot a log-scaled bound by an ulp
        (``exp(log(10))`` is ``10.000000000000007``), and the acquisition
        optimizer often proposes the bounds themselves.
        """
        floats, fixed = self._floats, self._fixed_values
        for config in configs:
            for name, value in config.items():
                if name in fixed:
                    config[name] = fixed[name]
                elif name in floats:
                    low, high = floats[name]
                    config[name] = min(max(value, low), high)
        return configs

    def _initial_point(self, taken: list[dict[str, Any]]) -> dict[str, Any] | None:
        for config in self.initial_design_:
            if self._is_new(config) and config not in taken:
                return dict(config)
        return None

    def _claimed_point(self, taken: list[dict[str, Any]]) -> dict[str, Any] | None:
        """Claim network-wide design indices until one gives a new point (None: design done)."""
        assert self._claim is not None
        while True:
            i = self._claim()
            if i >= len(self.initial_design_):
                self._design_done = True
                return None
            config = self.initial_design_[i]
            if self._is_new(config) and config not in taken:
                return dict(config)

    def _random_point(self, taken: list[dict[str, Any]]) -> dict[str, Any] | None:
        """Return a random new configuration, or None when a finite space has none left."""
        finite = self.encoding_.enumerate()
        if finite is not None:
            if self._finite_configs is None:
                self._finite_configs = self.space_.decode(finite)
            new = [c for c in self._finite_configs if self._is_new(c) and c not in taken]
            return dict(new[int(self.rng_.integers(len(new)))]) if new else None
        for _ in range(10):
            for config in self._clamp(self.space_.sample(16, self.rng_)):
                if self._is_new(config) and config not in taken:
                    return config
        if not self._floats:  # a large finite space, nearly exhausted
            return None
        return self._clamp(self.space_.sample(1, self.rng_))[0]  # floats never repeat

    # ------------------------------------------------------------ models
    def _training_data(self) -> tuple[np.ndarray, np.ndarray]:
        """Return the encoded successful evaluations (cached: ``configs_`` only grows)."""
        if len(self._X_cache) < len(self.configs_):
            new = self.space_.encode(self.configs_[len(self._X_cache) :])
            self._X_cache = np.vstack([self._X_cache, new])
        y = np.asarray(self.values_, dtype=float)
        ok = np.isfinite(y)
        return self._X_cache[ok], y[ok]

    def _model_input(self, X: np.ndarray) -> np.ndarray:
        if self._gp:
            return self.features_.transform(X)
        return X

    def _fit_base(self) -> tuple[np.ndarray, np.ndarray]:
        """Fit the surrogate on the successful evaluations; return them, targets warped."""
        X, y = self._training_data()
        y = warp_targets(y)
        model = self.surrogate_
        Z = self._model_input(X)
        if self._gp:
            self._fit_gp(model, Z, y)
        else:
            model.set_params(seed=int(self.rng_.integers(2**31))).fit(Z, y)
        return X, y

    def _fit_gp(self, model: GaussianProcess, Z: np.ndarray, y: np.ndarray) -> None:
        """Fit the Gaussian process, its hyperparameters only when due (module docstring)."""
        n = len(y)
        step = min(20, max(1, n // 10))
        full, due = self._fit_due(n, step)
        shared: SharedValues | None = getattr(self, "_shared", None)
        if due and shared is not None:  # about to refit: first look at the network's fit
            if self._adopt_shared_fit(model, Z.shape[1], shared):
                full, due = self._fit_due(n, step)
            if due and self._has_hyperparameters(model, Z.shape[1]):
                # one worker refits; the others go on with the shared fit until it arrives
                due = shared.offer_shared_value(_SHARED_CLAIM, n, b"", lead=step)
        if not due:
            model.fit(Z, y, optimize=False)
            return
        if full:
            seed = int(self.rng_.integers(2**31))
            model.set_params(n_restarts=2, seed=seed).fit(Z, y)
            self._gp_restart_n = n
        else:
            model.set_params(n_restarts=0).fit(Z, y)
        self._gp_fit_n = n
        if shared is not None:
            self._offer_shared_fit(model, shared)

    def _fit_due(self, n: int, step: int) -> tuple[bool, bool]:
        """Whether ``n`` successes call for a fit with restarts, and for any refit."""
        restart = self._gp_restart_n
        full = restart is None or n <= _FULL_FIT_UNTIL or n >= 2 * restart
        return full, full or n - self._gp_fit_n >= step

    @staticmethod
    def _has_hyperparameters(model: GaussianProcess, n_features: int) -> bool:
        theta = getattr(model, "theta_", None)
        return theta is not None and len(theta) == model.n_hyperparameters(n_features)

    def _adopt_shared_fit(
        self, model: GaussianProcess, n_features: int, shared: SharedValues
    ) -> bool:
        """Take the network's hyperparameters if they were fitted on more results than ours."""
        got = shared.read_shared_value(_SHARED_FIT)
        if got is None or got[0] <= self._gp_fit_n:
            return False
        values = np.frombuffer(got[1], dtype="<f8")
        if len(values) != model.n_hyperparameters(n_features) + 1:
            return False  # another space's fit (cannot happen within one run)
        model.theta_ = values[1:].copy()
        self._gp_fit_n = got[0]
        self._gp_restart_n = max(self._gp_restart_n or 0, int(values[0]))
        return True

    def _offer_shared_fit(self, model: GaussianProcess, shared: SharedValues) -> None:
        """Offer the hyperparameters just fitted to the network, ranked by ``n``."""
        values = np.r_[float(self._gp_restart_n or 0), model.theta_].astype("<f8")
        shared.offer_shared_value(_SHARED_FIT, self._gp_fit_n, values.tobytes())

    def _impute(self, batch: _Batch, pending: list[dict[str, Any]]) -> None:
        """Refit the surrogate with pending configurations imputed at its mean.

        Each pending configuration is imputed once, at the mean of the model
        fitted when it is first seen: the model of the finished evaluations
        for configurations pending before this ask, the model that chose it
        for one proposed earlier in the same ask (sequential "kriging
        believer"). For a Gaussian process this leaves the mean unchanged and
        shrinks the uncertainty around pending points, so concurrent
        proposals spread out.
        """
        if len(pending) == batch.n_imputed:
            return
        model = self.surrogate_
        Xp = self.space_.encode(pending[batch.n_imputed :])
        batch.X_imputed = np.vstack([batch.X_imputed, Xp])
        batch.y_imputed = np.append(batch.y_imputed, model.predict(self._model_input(Xp)))
        batch.n_imputed = len(pending)
        X = self._model_input(np.vstack([batch.X, batch.X_imputed]))
        y = np.concatenate([batch.y, batch.y_imputed])
        if self._gp:
            model.fit(X, y, optimize=False)  # type: ignore[call-arg]
        else:
            model.fit(X, y)

    def _model_point(self, batch: _Batch, taken: list[dict[str, Any]]) -> dict[str, Any] | None:
        """Return the best new candidate of the acquisition, or None if all were taken."""
        from rushopt.optimizers.acquisition_search import N_TOP, search

        model = self.surrogate_
        gp = self._gp
        X_all = np.vstack([batch.X, batch.X_imputed])
        if self._fixed:
            # the evaluated points moved to the fixed values (class docstring): the values
            # observed elsewhere are not comparable with what the proposals target
            X_all[:, list(self._fixed)] = list(self._fixed.values())
        if self._fixed or (gp and model.noise_ > _NOISY * model.signal_variance_):
            # the incumbent: the lowest posterior mean at a conditioning point (module docstring)
            fitted = np.asarray(model.predict(self._model_input(X_all)), dtype=float)
            best = float(np.min(fitted))
            order = np.argsort(fitted[: len(batch.X)], kind="stable")[:N_TOP]
        else:
            best = float(min(np.min(batch.y), np.min(batch.y_imputed, initial=np.inf)))
            order = np.argsort(batch.y, kind="stable")[:N_TOP]
        top = X_all[order]
        predictor: Any = SpaceModel(model, self.features_) if gp else model
        candidates, scores = search(
            predictor,
            self.kappa,
            best,
            self.encoding_,
            top,
            self.rng_,
            gradient=gp,
            fixed=self._fixed,
        )
        for i in np.argsort(scores, kind="stable"):
            (config,) = self._clamp(self.space_.decode(candidates[i : i + 1]))
            if self._is_new(config) and config not in taken:
                return config
        return None


class _Batch:
    """Training data of one ``ask``: finished evaluations plus imputed pending ones."""

    def __init__(self, X: np.ndarray, y: np.ndarray, n_dims: int) -> None:
        self.X, self.y = X, y
        self.X_imputed = np.empty((0, n_dims))
        self.y_imputed = np.empty(0)
        self.n_imputed = 0
