"""The Gaussian process's view of a mixed, conditional space: kernel features.

The GP's kernel is a Matérn 5/2 with one length scale per *parameter*
(automatic relevance determination over parameters, not columns), on
features built from the encoding of
:meth:`~rushopt.optimizers.space.Space.encode`:

- a numeric parameter (``Float`` or ``Int``, log-scaled ones in log space)
  that is always active is its ``[0, 1]`` feature;
- a categorical parameter is its one-hot block divided by ``sqrt 2``: two
  configurations that differ in it are at squared distance ``1 / l^2``, an
  exponentiated-Hamming (overlap) kernel folded into the same Matérn;
- a *conditional* numeric parameter is mapped onto an arc of radius 1 and
  angle 1 (``u -> (cos u, sin u)``), and to the arc's centre when inactive.
  The centre is at the same distance from every point of the arc, so the
  value an inactive parameter would have had never matters: inactive
  parameters do not pollute the kernel (the arc kernel of Swersky et al.,
  2014), and the kernel stays positive definite because it is a Matérn on a
  Euclidean embedding.

:class:`SpaceModel` wraps a fitted :class:`~rushopt.optimizers.gaussian_process.GaussianProcess`
so that it predicts, with gradients, on encoded rows.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from rushopt.optimizers.parameters import Categorical

if TYPE_CHECKING:
    from rushopt.optimizers.gaussian_process import GaussianProcess
    from rushopt.optimizers.space import Space

__all__ = ["KernelFeatures", "SpaceModel"]

_ARC = 1.0  # angle of the arc of a conditional parameter; chord / arc >= 0.96
_SQRT_HALF = math.sqrt(0.5)


class KernelFeatures:
    """Map encoded rows to the features of the GP's kernel (see the module docstring).

    Parameters
    ----------
    space : Space
        The search space.

    Attributes
    ----------
    groups : numpy.ndarray of int
        For every feature, the parameter (length scale) it belongs to.
    n_groups : int
        Number of parameters, and so of length scales.
    n_features : int
        Number of kernel features.
    numeric : numpy.ndarray of int
        The features of the always-active numeric parameters (each its
        ``[0, 1]`` column), which the GP may warp.
    """

    def __init__(self, space: Space) -> None:
        self._parts: list[tuple[str, int, slice]] = []  # (kind, encoded column, feature slice)
        groups: list[int] = []
        for g, name in enumerate(space.names):
            param, cols = space.params[name], space.columns(name)
            start = len(groups)
            if isinstance(param, Categorical):
                width = cols.stop - cols.start
                self._parts.append(("cat", cols.start, slice(start, start + width)))
            elif param.when:
                width = 2
                self._parts.append(("arc", cols.start, slice(start, start + 2)))
            else:
                width = 1
                self._parts.append(("num", cols.start, slice(start, start + 1)))
            groups += [g] * width
        self.groups = np.asarray(groups, dtype=int)
        self.n_groups = len(space.names)
        self.n_features = len(groups)
        self.numeric = np.asarray(
            [out.start for kind, _, out in self._parts if kind == "num"], dtype=int
        )

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Return the kernel features of encoded rows.

        Parameters
        ----------
        X : numpy.ndarray of shape (n, n_dims)
            Rows of :meth:`~rushopt.optimizers.space.Space.encode`.

        Returns
        -------
        numpy.ndarray of shape (n, n_features)
            The features.
        """
        X = np.atleast_2d(X)
        Z = np.empty((len(X), self.n_features))
        for kind, col, out in self._parts:
            if kind == "cat":
                Z[:, out] = X[:, col : col + out.stop - out.start] * _SQRT_HALF
            elif kind == "num":
                Z[:, out.start] = X[:, col]
            else:
                u = X[:, col]
                active = u >= 0.0
                Z[:, out.start] = np.where(active, np.cos(_ARC * u), 0.0) / _ARC
                Z[:, out.start + 1] = np.where(active, np.sin(_ARC * u), 0.0) / _ARC
        return Z

    def pullback(self, X: np.ndarray, dZ: np.ndarray) -> np.ndarray:
        """Turn gradients in the features into gradients in the encoded numeric columns.

        Parameters
        ----------
        X : numpy.ndarray of shape (n, n_dims)
            The encoded rows the gradients were taken at.
        dZ : numpy.ndarray of shape (n, n_features)
            Gradients with respect to the features.

        Returns
        -------
        numpy.ndarray of shape (n, n_dims)
            Gradients with respect to the encoded columns (zero for
            categorical and inactive ones).
        """
        dX = np.zeros(X.shape)
        for kind, col, out in self._parts:
            if kind == "num":
                dX[:, col] = dZ[:, out.start]
            elif kind == "arc":
                u = X[:, col]
                d = -np.sin(_ARC * u) * dZ[:, out.start] + np.cos(_ARC * u) * dZ[:, out.start + 1]
                dX[:, col] = np.where(u >= 0.0, d, 0.0)
        return dX


class SpaceModel:
    """A fitted Gaussian process that predicts on encoded rows.

    Parameters
    ----------
    gp : GaussianProcess
        The process, fitted on :meth:`KernelFeatures.transform` features.
    features : KernelFeatures
        The map it was fitted through.
    """

    def __init__(self, gp: GaussianProcess, features: KernelFeatures) -> None:
        self.gp = gp
        self.features = features

    def predict(self, X: np.ndarray, return_std: bool = False) -> Any:
        """Predict the mean (and standard deviation) at encoded rows.

        Parameters
        ----------
        X : numpy.ndarray of shape (n, n_dims)
            Encoded rows.
        return_std : bool, default False
            Also return the standard deviation.

        Returns
        -------
        numpy.ndarray or tuple of numpy.ndarray
            As :meth:`GaussianProcess.predict`.
        """
        return self.gp.predict(self.features.transform(X), return_std=return_std)

    def predict_with_gradient(
        self, X: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Predict mean and standard deviation with their gradients in the encoded columns.

        Returns
        -------
        mean, std : numpy.ndarray of shape (n,)
            As :meth:`predict` with ``return_std=True``.
        d_mean, d_std : numpy.ndarray of shape (n, n_dims)
            Their gradients (zero in categorical and inactive columns).
        """
        X = np.atleast_2d(X)
        mean, std, d_mean, d_std = self.gp.predict_with_gradient(self.features.transform(X))
        return mean, std, self.features.pullback(X, d_mean), self.features.pullback(X, d_std)
