"""Descriptors that let a facade expose the methods and properties of its services.

``Rush`` keeps the wide public API of the contract while its work is done by
small services, one concept each. Each public name is one line on the facade::

    n_workers: ForwardProperty[int] = ForwardProperty("_workers", WorkerService.n_workers)
    stop_workers = forward("_workers", WorkerService.stop_workers)

The forwarded name keeps the service's signature (for type checkers) and its
docstring (for ``help()``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, overload

__all__ = ["ForwardProperty", "forward"]

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


class _ForwardMethod(Generic[P, R]):
    def __init__(self, service: str, method: Callable[Concatenate[Any, P], R]) -> None:
        self._service = service
        self._method = method
        self.__doc__ = method.__doc__

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> Callable[Concatenate[Any, P], R]: ...

    @overload
    def __get__(self, obj: object, owner: type | None = None) -> Callable[P, R]: ...

    def __get__(self, obj: object | None, owner: type | None = None) -> Any:
        if obj is None:
            return self._method
        bound: Callable[P, R] = getattr(getattr(obj, self._service), self._method.__name__)
        return bound


def forward(service: str, method: Callable[Concatenate[Any, P], R]) -> _ForwardMethod[P, R]:
    """Expose ``method`` of the service held in attribute ``service`` of the facade.

    Parameters
    ----------
    service : str
        The facade's attribute that holds the service.
    method : callable
        The service's method (as found on its class).

    Returns
    -------
    descriptor
        Bound to a facade, it returns the service's bound method.
    """
    return _ForwardMethod(service, method)


class ForwardProperty(Generic[T]):
    """Expose a property of the service held in attribute ``service`` of the facade.

    Parameters
    ----------
    service : str
        The facade's attribute that holds the service.
    prop : property
        The service's property (as found on its class); a setter is forwarded
        too. Type checkers see the property as its getter, which gives ``T``.
    """

    def __init__(self, service: str, prop: Callable[[Any], T]) -> None:
        self._service = service
        self._prop: Any = prop
        getter = prop.fget if isinstance(prop, property) else prop
        self._name: str = getattr(getter, "__name__", "")
        self.__doc__ = prop.__doc__

    def __get__(self, obj: object | None, owner: type | None = None) -> T:
        if obj is None:
            return self  # type: ignore[return-value]  # class access: the descriptor, for help()
        value: T = getattr(getattr(obj, self._service), self._name)
        return value

    def __set__(self, obj: object, value: T) -> None:
        if self._prop.fset is None:
            raise AttributeError(f"property {self._name!r} cannot be set")
        setattr(getattr(obj, self._service), self._name, value)
