"""A module that is imported on first attribute access.

Modules that the command line imports at start-up (io, the result types, the
stage command modules) name numpy and pandas at their top; binding them
through `lazy_module` keeps `llmcause --help` from paying for either.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import Any, Callable, Mapping


class _LazyModule:
    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        value = getattr(importlib.import_module(self._name), attr)
        self.__dict__[attr] = value  # later look-ups are plain attribute hits
        return value

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}>"


def lazy_module(name: str) -> Any:
    """The module if already imported, else a stand-in that imports it when first used."""
    module = sys.modules.get(name)
    return module if isinstance(module, ModuleType) else _LazyModule(name)


def lazy_exports(package: str, where: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for a package whose public names load from their submodule on first use.

    ``where`` maps each name to the submodule that defines it; the package
    binds the pair at module level (PEP 562), so ``import llmcause.core``
    costs nothing until a name is used.
    """

    def __getattr__(name: str) -> Any:
        if name in where:
            return getattr(importlib.import_module(f".{where[name]}", package), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted([*vars(sys.modules[package]), *where])

    return __getattr__, __dir__
