"""Parameters of a search space: :class:`Float`, :class:`Int` and :class:`Categorical`.

Each parameter validates its own definition (:meth:`check`) and its values
(:meth:`validate`); numeric parameters also map values to and from a feature in
``[0, 1]`` (in log space with ``log=True``), which
:meth:`~rushopt.optimizers.space.Space.encode` uses. A parameter may be
conditional: ``when={"kernel": ["rbf", "poly"]}`` makes it active only when
``kernel`` takes one of those values; :class:`~rushopt.optimizers.space.Space`
checks conditions against the other parameters.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rushopt.exceptions import SearchSpaceError

__all__ = ["Categorical", "Float", "Int", "Param"]


def _check_when(when: Mapping[str, Sequence[Any]] | None) -> dict[str, tuple[Any, ...]]:
    if when is None:
        return {}
    if not isinstance(when, Mapping):
        raise SearchSpaceError("when must be a dict of parameter name to allowed values")
    out = {}
    for name, values in when.items():
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
            values = [values]
        if not values:
            raise SearchSpaceError(f"when[{name!r}] must list at least one value")
        out[str(name)] = tuple(values)
    return out


@dataclass(frozen=True)
class _Numeric:
    low: float
    high: float
    log: bool = False
    when: dict[str, tuple[Any, ...]] = field(default_factory=dict)

    def check(self, name: str) -> None:
        """Validate this parameter's definition.

        Parameters
        ----------
        name : str
            The parameter's name in its space, used in error messages.

        Raises
        ------
        ValueError
            (:class:`~rushopt.exceptions.SearchSpaceError`) naming the
            parameter when the definition is invalid.
        """
        for bound in ("low", "high"):
            value = getattr(self, bound)
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise SearchSpaceError(f"{name}: {bound} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise SearchSpaceError(f"{name}: {bound} must be finite, got {value!r}")
        if self.low >= self.high:
            raise SearchSpaceError(f"{name}: low ({self.low}) must be < high ({self.high})")
        if self.log and self.low <= 0:
            raise SearchSpaceError(f"{name}: log=True needs low > 0, got low={self.low}")

    def to_unit(self, value: float) -> float:
        """Map a value to its feature in ``[0, 1]`` (in log space with ``log=True``).

        Parameters
        ----------
        value : float
            A value within the bounds.

        Returns
        -------
        float
            The feature, the inverse of :meth:`from_unit`.
        """
        if self.log:
            return (math.log(value) - math.log(self.low)) / (
                math.log(self.high) - math.log(self.low)
            )
        return (value - self.low) / (self.high - self.low)

    def from_unit(self, u: float) -> float:
        """Map a feature in ``[0, 1]`` back to a value.

        Parameters
        ----------
        u : float
            The feature; clipped to ``[0, 1]`` first.

        Returns
        -------
        float or int
            The value, within the bounds.
        """
        u = min(max(float(u), 0.0), 1.0)
        if self.log:
            span = math.log(self.high) - math.log(self.low)
            value = math.exp(math.log(self.low) + u * span)
        else:
            value = self.low + u * (self.high - self.low)
        return float(min(max(value, self.low), self.high))  # exp/log round past the bounds


class Float(_Numeric):
    """A real parameter in ``[low, high]``, sampled uniformly (log-uniformly with ``log=True``).

    Parameters
    ----------
    low, high : float
        Bounds, ``low < high``.
    log : bool, default False
        Sample and model in log space (needs ``low > 0``).
    when : dict, optional
        Condition: parameter name to the values that activate this one.
    """

    def __init__(
        self, low: float, high: float, log: bool = False, when: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(low, high, bool(log), _check_when(when))

    def validate(self, name: str, value: Any) -> float:
        """Check one value and return it in canonical form.

        Parameters
        ----------
        name : str
            The parameter's name, used in error messages.
        value : object
            The value to check.

        Returns
        -------
        object
            The value as this parameter represents it (``float``, ``int``,
            or the matching choice).

        Raises
        ------
        ValueError
            (:class:`~rushopt.exceptions.SearchSpaceError`) naming the
            parameter when the value is of the wrong type or out of range.
        """
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise SearchSpaceError(f"{name} must be a number, got {value!r}")
        value = float(value)
        if not self.low <= value <= self.high:
            raise SearchSpaceError(f"{name}={value} is outside [{self.low}, {self.high}]")
        return float(value)


class Int(_Numeric):
    """An integer parameter in ``[low, high]`` (both included).

    Parameters
    ----------
    low, high : int
        Bounds, ``low < high``.
    log : bool, default False
        Sample and model in log space (needs ``low > 0``).
    when : dict, optional
        Condition: parameter name to the values that activate this one.
    """

    def __init__(
        self, low: int, high: int, log: bool = False, when: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(low, high, bool(log), _check_when(when))

    def check(self, name: str) -> None:
        """Validate this parameter's definition.

        Parameters
        ----------
        name : str
            The parameter's name in its space, used in error messages.

        Raises
        ------
        ValueError
            (:class:`~rushopt.exceptions.SearchSpaceError`) naming the
            parameter when the definition is invalid.
        """
        super().check(name)
        for bound in ("low", "high"):
            if int(getattr(self, bound)) != getattr(self, bound):
                raise SearchSpaceError(f"{name}: {bound} must be an integer")

    def to_unit(self, value: float) -> float:
        """Map a value to its feature in ``[0, 1]`` (in log space with ``log=True``).

        Parameters
        ----------
        value : float
            A value within the bounds.

        Returns
        -------
        float
            The feature, the inverse of :meth:`from_unit`.
        """
        # integers own equal slices of [0, 1] (of log [low, high + 1) with log=True),
        # so from_unit(to_unit(v)) == v and uniform draws give each integer its share
        if self.log:
            low, high = math.log(self.low), math.log(self.high + 1)
            return min(max((math.log(value + 0.5) - low) / (high - low), 0.0), 1.0)
        return (value - self.low + 0.5) / (self.high - self.low + 1)

    def from_unit(self, u: float) -> int:
        """Map a feature in ``[0, 1]`` back to a value.

        Parameters
        ----------
        u : float
            The feature; clipped to ``[0, 1]`` first.

        Returns
        -------
        float or int
            The value, within the bounds.
        """
        u = min(max(float(u), 0.0), 1.0)
        if self.log:
            low, high = math.log(self.low), math.log(self.high + 1)
            value = math.floor(math.exp(low + u * (high - low)))
        else:
            value = math.floor(self.low + u * (self.high - self.low + 1))
        return int(min(max(value, self.low), self.high))

    def validate(self, name: str, value: Any) -> int:
        """Check one value and return it in canonical form.

        Parameters
        ----------
        name : str
            The parameter's name, used in error messages.
        value : object
            The value to check.

        Returns
        -------
        object
            The value as this parameter represents it (``float``, ``int``,
            or the matching choice).

        Raises
        ------
        ValueError
            (:class:`~rushopt.exceptions.SearchSpaceError`) naming the
            parameter when the value is of the wrong type or out of range.
        """
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise SearchSpaceError(f"{name} must be an integer, got {value!r}")
        if float(value) != int(float(value)):
            raise SearchSpaceError(f"{name} must be an integer, got {value!r}")
        value = int(float(value))
        if not self.low <= value <= self.high:
            raise SearchSpaceError(f"{name}={value} is outside [{self.low}, {self.high}]")
        return int(value)


class Categorical:
    """A parameter taking one of ``choices``.

    Parameters
    ----------
    choices : sequence
        Distinct values (strings, numbers, booleans, None).
    when : dict, optional
        Condition: parameter name to the values that activate this one.
    """

    def __init__(self, choices: Sequence[Any], when: Mapping[str, Any] | None = None) -> None:
        if isinstance(choices, (str, bytes)) or not isinstance(choices, Sequence):
            raise SearchSpaceError("choices must be a list of values")
        self.choices = tuple(choices)
        self.when = _check_when(when)

    def check(self, name: str) -> None:
        """Validate this parameter's definition.

        Parameters
        ----------
        name : str
            The parameter's name in its space, used in error messages.

        Raises
        ------
        ValueError
            (:class:`~rushopt.exceptions.SearchSpaceError`) naming the
            parameter when the definition is invalid.
        """
        if not self.choices:
            raise SearchSpaceError(f"{name}: choices must not be empty")
        if len({repr(c) for c in self.choices}) != len(self.choices):
            raise SearchSpaceError(f"{name}: choices must be distinct, got {list(self.choices)}")

    def index(self, value: Any) -> int:
        """Return the position of ``value`` among the choices.

        A choice of the same type wins over an equal one of another type
        (``1`` and ``True`` compare equal).

        Parameters
        ----------
        value : object
            The value to look up.

        Returns
        -------
        int
            Its index in ``choices``.

        Raises
        ------
        ValueError
            If ``value`` is none of the choices.
        """
        for i, choice in enumerate(self.choices):
            if choice == value and type(choice) is type(value):
                return i
        for i, choice in enumerate(self.choices):
            if choice == value:
                return i
        raise ValueError(value)

    def validate(self, name: str, value: Any) -> Any:
        """Check one value and return it in canonical form.

        Parameters
        ----------
        name : str
            The parameter's name, used in error messages.
        value : object
            The value to check.

        Returns
        -------
        object
            The value as this parameter represents it (``float``, ``int``,
            or the matching choice).

        Raises
        ------
        ValueError
            (:class:`~rushopt.exceptions.SearchSpaceError`) naming the
            parameter when the value is of the wrong type or out of range.
        """
        try:
            return self.choices[self.index(value)]
        except ValueError:
            raise SearchSpaceError(f"{name}={value!r} is not one of {list(self.choices)}") from None

    def __repr__(self) -> str:
        when = f", when={self.when}" if self.when else ""
        return f"Categorical({list(self.choices)!r}{when})"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Categorical)
            and self.choices == other.choices
            and self.when == other.when
        )

    def __hash__(self) -> int:
        return hash((self.choices, tuple(self.when)))


Param = Float | Int | Categorical
