"""The tuning runtime: :func:`rushopt.tune` and what it runs on a rush network (Redis).

- ``tune``: :func:`~rushopt.tuning.tune.tune`, its validation, and the choice
  of optimizer and mode;
- ``run``: :class:`~rushopt.tuning.run.TuneRun`, the controller side of one call
  (start the workers, watch the archive, apply the stop rules, collect);
- ``worker_loops``: the worker side, the decentralized optimization loop and the
  centralized evaluation loop;
- ``objective``: the wrapper that calls the user's objective and checks its metric;
- ``result``: :class:`~rushopt.tuning.result.TuneResult`, the archive read from
  Redis, and its plots;
- ``progress``: the progress bar.

The ask/tell optimizers that ``tune`` drives are pure Python and live in
:mod:`rushopt.optimizers`. This package imports nothing itself: a worker that
unpickles an :class:`~rushopt.tuning.objective.Objective` loads only that
module, without pandas or scikit-learn. Import :func:`rushopt.tune` and
:class:`rushopt.TuneResult` from :mod:`rushopt`.
"""
