"""Router logs: one row per prompt with its context, the model chosen, the logging
propensity of that choice, the quality of the answer and its cost.

`read_log` checks every column and says which file, column and row is wrong
(`DataError`), so the command line exits with code 2 and one plain message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from ..io import (DataError, label_column, numeric_column, parse_list, read_table, require_columns, source_of,
                  time_column)
from .features import FeaturePipeline


@dataclass
class RoutingLog:
    """A validated router log.

    Attributes
    ----------
    models : the model names, in a fixed order (codes 0..K−1 index them).
    action : (n,) code of the logged model.
    reward : (n,) quality of the logged answer.
    propensity : (n,) logging probability of the logged model, or None when it was not logged.
    cost : (n,) cost of the logged call, or None.
    prices : known per-call cost of each model (a price table), or None.
    X : (n, d) context features built by ``pipeline``.
    time : optional (n,) numeric time (seconds since the epoch for dates).
    cluster : optional cluster labels (prompt ids) for cluster-robust errors.
    frame : the table itself (a copy), for policy specs that read its columns.
    """

    models: list[str]
    action: np.ndarray
    reward: np.ndarray
    propensity: np.ndarray | None
    cost: np.ndarray | None
    prices: dict[str, float] | None
    X: np.ndarray
    pipeline: FeaturePipeline
    frame: pd.DataFrame
    source: str
    columns: dict[str, str] = field(default_factory=dict)
    time: np.ndarray | None = None
    time_is_date: bool = False
    cluster: np.ndarray | None = None

    @property
    def n(self) -> int:
        return int(self.action.shape[0])

    @property
    def k(self) -> int:
        return len(self.models)

    @property
    def has_cost(self) -> bool:
        return self.cost is not None or self.prices is not None

    def price_matrix(self) -> np.ndarray | None:
        """(n, K) known cost of each model per row, from the price table."""
        if self.prices is None:
            return None
        return np.tile(np.array([self.prices[m] for m in self.models], dtype=float), (self.n, 1))

    def logged_cost(self) -> np.ndarray | None:
        """The cost of the logged call: the cost column, else the price of the logged model."""
        if self.cost is not None:
            return self.cost
        if self.prices is not None:
            return np.array([self.prices[m] for m in self.models])[self.action]
        return None

    def subset(self, rows: np.ndarray) -> "RoutingLog":
        """The log restricted to some rows (same models and features)."""
        take = lambda a: None if a is None else a[rows]  # noqa: E731
        return RoutingLog(models=self.models, action=self.action[rows], reward=self.reward[rows],
                          propensity=take(self.propensity), cost=take(self.cost), prices=self.prices,
                          X=self.X[rows], pipeline=self.pipeline, frame=self.frame.iloc[rows].reset_index(drop=True),
                          source=self.source, columns=self.columns, time=take(self.time),
                          time_is_date=self.time_is_date, cluster=take(self.cluster))


def parse_prices(text: str | Mapping[str, float] | None, option: str = "--costs") -> dict[str, float] | None:
    """``"small=0.2,large=3"`` → {"small": 0.2, "large": 3.0}."""
    if text is None:
        return None
    if isinstance(text, Mapping):
        items = list(text.items())
    else:
        items = []
        for part in parse_list(text, option):
            if "=" not in part:
                raise DataError(f"{option}: {part!r} is not MODEL=PRICE")
            model, _, price = part.partition("=")
            items.append((model.strip(), price.strip()))
    prices: dict[str, float] = {}
    for model, price in items:
        try:
            value = float(price)
        except (TypeError, ValueError):
            raise DataError(f"{option}: price {price!r} of model {model!r} is not a number") from None
        if not np.isfinite(value) or value < 0:
            raise DataError(f"{option}: price of model {model!r} must be a non-negative number, got {price!r}")
        if model in prices:
            raise DataError(f"{option}: model {model!r} is priced twice")
        prices[str(model)] = value
    if not prices:
        raise DataError(f"{option}: no prices given")
    return prices


def read_log(data, *, action: str, reward: str, propensity: str | None = None, cost: str | None = None,
             costs: str | Mapping[str, float] | None = None, features: Sequence[str] | str | None = None,
             text: str | None = None, time: str | None = None, cluster: str | None = None,
             pipeline: FeaturePipeline | None = None, n_components: int = 16, seed: int = 0) -> RoutingLog:
    """Read and validate a router log from a path or a DataFrame (never modified).

    Parameters
    ----------
    action, reward : columns with the logged model's name and the answer's quality.
    propensity : column with the logging probability of the logged model, in (0, 1].
    cost : column with the cost of the logged call; or ``costs``, a price table per model.
    features : columns describing the prompt (numbers or categories); ``text``: a prompt text column.
    time : a time column (numbers or dates), for drift; it may also be one of ``features`` (numeric time
        only), so the nuisance models can follow the drift. ``cluster``: prompt ids.
    pipeline : a fitted feature pipeline to reuse (a router's); by default one is fitted here.
    """
    df = read_table(data)
    src = source_of(df)
    feats = parse_list(features, "--features") if isinstance(features, str) else list(features or [])
    named = {"--action": action, "--reward": reward, "--propensity": propensity, "--cost": cost, "--text": text,
             "--time": time, "--cluster": cluster}
    wanted = {opt: col for opt, col in named.items() if col is not None}
    require_columns(df, [*wanted.values(), *feats], option={**{c: o for o, c in wanted.items()},
                                                            **{c: "--features" for c in feats}})
    used = list(wanted.values())
    # the time column may also be a feature: the nuisances then model time directly (drift)
    dup = sorted({c for c in used if used.count(c) > 1} | {c for c in feats if c in used and c != time})
    if dup:
        raise DataError(f"column {dup[0]!r} is given to more than one option")
    if cost is not None and costs is not None:
        raise DataError("give either --cost (a column) or --costs (a price table), not both")

    names = label_column(df, action)
    logged = sorted(set(names))
    prices = parse_prices(costs)
    if prices is not None:
        for i, m in enumerate(names):
            if m not in prices:
                raise DataError(f"{src}: column {action!r}, row {i + 1}: --costs gives no price for model {m!r} "
                                f"(priced: {', '.join(prices)})")
    models = logged
    if len(models) < 2:
        raise DataError(f"{src}: column {action!r} holds only one model ({models[0]!r}); routing needs at least two")
    code = {m: j for j, m in enumerate(models)}
    a = np.array([code[m] for m in names], dtype=np.int64)
    y = numeric_column(df, reward)
    p = None
    if propensity is not None:
        p = numeric_column(df, propensity, lower=0.0, lower_open=True, upper=1.0, what="a probability")
    c = None
    if cost is not None:
        c = numeric_column(df, cost, lower=0.0, what="a cost")
    t, is_date = (None, False) if time is None else time_column(df, time)
    if is_date and time in feats:
        raise DataError(f"{src}: column {time!r} holds dates; as a feature (--features) time must be numeric "
                        "(e.g. days since the start)")
    groups = None if cluster is None else label_column(df, cluster)
    if pipeline is None:
        pipeline = FeaturePipeline.for_columns(df, feats, text=text, n_components=n_components, seed=seed).fit(df)
    X = pipeline.transform(df)
    columns = {k.lstrip("-"): v for k, v in wanted.items()}
    return RoutingLog(models=models, action=a, reward=y, propensity=p, cost=c, prices=prices, X=X, pipeline=pipeline,
                      frame=df, source=src, columns=columns, time=t, time_is_date=is_date, cluster=groups)
