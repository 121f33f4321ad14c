"""Target routing policies, written as specs and turned into (n, K) probability matrices.

Specs:

- ``always:MODEL``  every prompt to MODEL;
- ``column:COL``    the model named in column COL of the log, per row;
- ``probs:PREFIX``  columns PREFIX<model> hold the policy's probability of each model;
- ``file:ROUTER.json``  a router learnt by ``llmcause routing learn``.

A policy that sends prompts to a model the log never chose cannot be
evaluated from that log (no overlap): that is an error, as is a model name
the log does not know.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..io import DataError, label_column, numeric_column, require_columns
from .logs import RoutingLog

KINDS = ("always", "column", "probs", "file")


@dataclass(frozen=True)
class PolicySpec:
    kind: str
    arg: str

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.arg}"


def parse_policy(text: str) -> PolicySpec:
    """Parse ``KIND:ARG``; raises DataError with the accepted forms."""
    kind, sep, arg = str(text).partition(":")
    kind = kind.strip().lower()
    if not sep or kind not in KINDS or not arg.strip():
        raise DataError(f"--policy {text!r}: use always:MODEL, column:COL, probs:PREFIX or file:ROUTER.json")
    return PolicySpec(kind, arg.strip())


def _unknown_model(log: RoutingLog, model: str, where: str) -> DataError:
    priced = set(log.prices or {})
    if model in priced:
        return DataError(f"{where}: model {model!r} never appears in column {log.columns.get('action')!r} of "
                         f"{log.source}, so no logged row can tell what it would have done (no overlap)")
    return DataError(f"{where}: unknown model {model!r}; the log's models are {', '.join(log.models)}")


def policy_matrix(spec: PolicySpec | str, log: RoutingLog) -> np.ndarray:
    """The policy's probability of each of the log's models, per row: (n, K)."""
    spec = parse_policy(spec) if isinstance(spec, str) else spec
    n, k = log.n, log.k
    index = {m: j for j, m in enumerate(log.models)}
    out = np.zeros((n, k))
    if spec.kind == "always":
        if spec.arg not in index:
            raise _unknown_model(log, spec.arg, f"--policy {spec.label}")
        out[:, index[spec.arg]] = 1.0
        return out
    if spec.kind == "column":
        require_columns(log.frame, [spec.arg], option={spec.arg: f"--policy {spec.label}"})
        names = label_column(log.frame, spec.arg)
        for i, m in enumerate(names):
            if m not in index:
                raise _unknown_model(log, m, f"{log.source}: column {spec.arg!r}, row {i + 1}")
            out[i, index[m]] = 1.0
        return out
    if spec.kind == "probs":
        cols = [c for c in log.frame.columns if str(c).startswith(spec.arg)]
        if not cols:
            raise DataError(f"--policy {spec.label}: {log.source} has no columns starting with {spec.arg!r}")
        for c in cols:
            model = str(c)[len(spec.arg):]
            values = numeric_column(log.frame, c, lower=0.0, upper=1.0, what="a probability")
            if model not in index:
                nz = np.flatnonzero(values > 0)
                if nz.size:
                    err = _unknown_model(log, model, f"{log.source}: column {c!r}, row {int(nz[0]) + 1}")
                    raise DataError(f"{err} (the policy gives it probability {values[nz[0]]:g})")
                continue
            out[:, index[model]] = values
        totals = out.sum(axis=1)
        bad = np.flatnonzero(np.abs(totals - 1.0) > 1e-6)
        if bad.size:
            i = int(bad[0])
            raise DataError(f"{log.source}: row {i + 1}: the probabilities in columns {spec.arg}* sum to "
                            f"{totals[i]:.6g}, not 1")
        return out / totals[:, None]
    # file: a learnt router
    from .router import load_router

    router = load_router(spec.arg)
    missing = [m for m in router.models if m not in index]
    if missing:
        raise _unknown_model(log, missing[0], f"--policy {spec.label}")
    choice = router.choose(log.frame)
    for j, m in enumerate(router.models):
        out[choice == j, index[m]] = 1.0
    return out


def check_support(pi: np.ndarray, log: RoutingLog, label: str) -> None:
    """Error when the policy uses a model that the log never chose (kept as a guard for subsets)."""
    logged = np.bincount(log.action, minlength=log.k)
    used = pi.sum(axis=0) > 0
    for j in np.flatnonzero(used & (logged == 0)):
        raise DataError(f"--policy {label}: model {log.models[j]!r} is never chosen in {log.source}, so the policy's "
                        "value there cannot be estimated (no overlap)")
