"""Per-task random streams.

A network created with ``seed=s`` gives task *i* (counted across the whole
network in Redis) the stream ``SeedSequence(s, spawn_key=(i,))``; tasks pushed
with explicit ``seeds=`` get ``SeedSequence(seed)``. The worker derives from
that one stream the seeds of Python's :mod:`random`, of NumPy's global RNG and
a :class:`numpy.random.Generator` for ``fun``'s ``rng`` argument, so a task's
randomness depends on the task only, never on the worker that runs it.
"""

from __future__ import annotations

import random

import numpy as np

__all__ = ["seed_task"]


def seed_task(seed: int | tuple[int, int] | None) -> np.random.Generator:
    """Seed the global RNGs for one task and return its generator.

    Parameters
    ----------
    seed : int, (entropy, spawn_index) or None
        The task's stored seed. ``None`` leaves the global RNGs alone and
        returns an unseeded generator.

    Returns
    -------
    numpy.random.Generator
        The generator passed to ``fun`` as ``rng``.
    """
    if seed is None:
        return np.random.default_rng()
    if isinstance(seed, tuple):
        sequence = np.random.SeedSequence(seed[0], spawn_key=(seed[1],))
    else:
        sequence = np.random.SeedSequence(seed)
    generator_seq, python_seq, numpy_seq = sequence.spawn(3)
    random.seed(int.from_bytes(python_seq.generate_state(4).tobytes(), "little"))
    np.random.seed(numpy_seq.generate_state(1)[0])
    return np.random.Generator(np.random.PCG64(generator_seq))
