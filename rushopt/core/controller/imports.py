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
    """Return the directories whose modules count as installed (real paths, with a separator)."""
    paths = sysconfig.get_paths()
    roots = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    roots.update(site.getsitepackages())
    user_site = site.getusersitepackages()
    if isinstance(user_site, str):
        roots.add(user_site)
    return tuple(os.path.join(os.path.realpath(r), "") for r in roots)


def _is_installed(name: str) -> bool:
    """Tell whether module ``name`` (imported here) is installed, not the user's own code."""
    if name == "rushopt" or name.startswith("rushopt."):
        return True
    module = sys.modules.get(name)
    if module is None:
        return False
    path = getattr(module, "__file__", None)
    if not isinstance(path, str):  # built into the interpreter, frozen, or a namespace package
        return name in sys.builtin_module_names or name.startswith("_frozen_importlib")
    return os.path.realpath(path).startswith(_installed_roots())


def _referred_to(module: types.ModuleType) -> Iterable[str]:
    """Yield the modules that the globals of ``module`` are, or come from."""
    for value in list(vars(module).values()):
        if isinstance(value, types.ModuleType):
            yield value.__name__
        elif isinstance(value, (type, types.FunctionType, types.BuiltinFunctionType)):
            name = getattr(value, "__module__", None)
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
        modules, the installed modules its globals are or come from; in
        order, without repeats. The user's modules are left out.
    """
    found: dict[str, None] = {}  # an ordered set
    for name in modules:
        if _is_installed(name):
            found.setdefault(name)
            continue
        module = sys.modules.get(name)
        if module is None:
            continue
        for referred in _referred_to(module):
            if referred != name and _is_installed(referred):
                found.setdefault(referred)
    return [name for name in found if name not in ("__main__", "builtins")]
