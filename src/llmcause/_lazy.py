"""A module that is imported on first attribute access.

Modules that the command line imports at start-up (io, the result types, the
stage command modules) name numpy and pandas at their top; binding them
through `lazy_module` keeps `llmcause --help` from paying for either.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import Any


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
