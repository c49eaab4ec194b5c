"""Which modules of the start arguments the worker zygote imports: :func:`zygote_imports`.

Unpickling the start arguments imports the modules of what they refer to by
name (:func:`~rushopt.core.serialize.dumps_code_and_imports`). The zygote
imports those once, before its first fork, so that its workers do not each
import scikit-learn again, and keeps them for the later runs of its
controller. It imports only **installed** modules: the standard library's,
those of site-packages, and rushopt's own. A module of the user's (a file
beside the script, a package installed in editable mode) is left to each
worker, as before the zygote existed, because the zygote would keep it past
edits and ``importlib.reload``, share the random state and file handles it
creates at import among all the forks, and bind its ``import __main__`` to the
zygote's. Instead, the installed modules such a module refers to (its
``import sklearn``, ``from sklearn.svm import SVC``) are imported by the zygote.
"""

from __future__ import annotations

import functools
import os
import site
import sys
import sysconfig
import types
from collections.abc import Iterable, Sequence

__all__ = ["zygote_imports"]


@functools.cache
def _installed_roots() -> tuple[str, ...]:
    """Return the directories whose modules count as installed (with a trailing separator)."""
    paths = sysconfig.get_paths()
    roots = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    roots.update(site.getsitepackages())
    user_site = site.getusersitepackages()
    if isinstance(user_site, str):
        roots.add(user_site)
    resolved = {f(r) for r in roots for f in (os.path.realpath, os.path.abspath)}
    return tuple(os.path.join(r, "") for r in resolved)


#: A module's own attribute lookup: a lazily loaded module's would load it.
_module_attribute = types.ModuleType.__getattribute__

#: Modules of the user's followed per call, at most (each adds a pass over its globals).
_MAX_USER_MODULES = 200


def _module_dict(value: object) -> dict[str, object] | None:
    """Return the namespace of ``value`` if it is a module (never asking a proxy), else None."""
    if not issubclass(type(value), types.ModuleType):  # type(): a proxy's __class__ may lie
        return None
    try:
        namespace = _module_attribute(value, "__dict__")
    except Exception:
        return None
    return namespace if isinstance(namespace, dict) else None


def _is_installed(name: str) -> bool:
    """Tell whether module ``name`` (imported here) is installed, not the user's own code."""
    if name == "rushopt" or name.startswith("rushopt."):
        return True
    namespace = _module_dict(sys.modules.get(name))
    if namespace is None:
        return False
    path = namespace.get("__file__")
    if not isinstance(path, str):  # built into the interpreter, frozen, or a namespace package
        origin = getattr(namespace.get("__spec__"), "origin", None)
        return name in sys.builtin_module_names or origin in ("built-in", "frozen")
    roots = _installed_roots()
    return os.path.realpath(path).startswith(roots) or os.path.abspath(path).startswith(roots)


def _referred_to(module: str) -> Iterable[str]:
    """Yield the modules that the globals of module ``module`` are, or come from."""
    namespace = _module_dict(sys.modules.get(module))
    for value in list(namespace.values()) if namespace is not None else ():
        kind = type(value)
        try:
            if issubclass(kind, types.ModuleType):
                name = (_module_dict(value) or {}).get("__name__")
            elif issubclass(kind, (type, types.FunctionType, types.BuiltinFunctionType)):
                name = getattr(value, "__module__", None)
            else:
                continue
        except Exception:  # an odd global: it only goes unfollowed
            continue
        if isinstance(name, str):
            yield name


def zygote_imports(modules: Sequence[str]) -> list[str]:
    """Return the modules the zygote imports for start arguments naming ``modules``.

    Parameters
    ----------
    modules : list of str
        The modules unpickling the start arguments imports, as
        :func:`~rushopt.core.serialize.dumps_code_and_imports` names them.

    Returns
    -------
    list of str
        The installed ones among them and, for each of the user's own
        modules, the installed modules its globals are or come from
        (following the user's modules it uses in turn, up to 200); in order,
        without repeats. The user's modules are left out. Nothing here is
        imported or loaded, and an odd global is skipped: this never raises.
    """
    found: dict[str, None] = {}  # an ordered set
    seen: set[str] = set()
    todo = list(modules)
    n_user = 0
    while todo:
        name = todo.pop(0)
        if name in seen:
            continue
        seen.add(name)
        if _is_installed(name):
            found.setdefault(name)
        elif n_user < _MAX_USER_MODULES:
            n_user += 1
            todo += [m for m in _referred_to(name) if m not in seen]
    return [name for name in found if name not in ("__main__", "builtins")]
