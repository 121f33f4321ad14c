"""Content identity of a run: a sha256 of the function and its canonical parameters.

Two runs with the same function (module, name and declared version) and the
same parameters are the same run, wherever and whenever they are requested,
so a store keyed by this hash never recomputes one. Parameters must be JSON
values (dicts, lists, strings, numbers, booleans, None). Floats are rounded
to 12 significant digits before hashing, so a value that went through a CSV
file and back keeps its identity; run functions should use the canonical
parameters (`canonical_params`) so that the result is a function of the key.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any, Callable, Mapping

__all__ = ["canonical_params", "canonical_json", "function_name", "run_key"]

FLOAT_DIGITS = 12


def canonical_params(value: Any) -> Any:
    """Parameters as plain JSON values: sorted dict keys, tuples as lists, floats rounded."""
    if isinstance(value, Mapping):
        return {str(k): canonical_params(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [canonical_params(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return canonical_params(value.item())
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"run parameters must be finite numbers, got {value!r}")
        if value == int(value) and abs(value) < 2**53:
            return float(int(value))
        return float(f"{value:.{FLOAT_DIGITS}g}")
    raise TypeError(f"run parameters must be JSON values; got {type(value).__name__}")


def canonical_json(value: Any) -> str:
    """Compact JSON of the canonical parameters (the bytes that are hashed)."""
    return json.dumps(canonical_params(value), sort_keys=True, separators=(",", ":"), allow_nan=False)


def function_name(fn: Callable) -> str:
    """``module:qualname@version``; ``fn.run_version`` (default "1") is bumped when results change meaning."""
    version = getattr(fn, "run_version", "1")
    return f"{fn.__module__}:{fn.__qualname__}@{version}"


def run_key(fn: Callable | str, params: Mapping[str, Any]) -> str:
    """The run's identity: sha256 hex of the function name and canonical parameters."""
    name = fn if isinstance(fn, str) else function_name(fn)
    return hashlib.sha256(f"{name}\n{canonical_json(params)}".encode("utf-8")).hexdigest()
