"""Judge evaluations under shift: the human-scale mean on another prompt mix, and a judge that drifts.

Transport (`transport_judge_means`). Estimand: θ_T,g = E_T[Y | g], the mean
label model g would get on the target prompts (the production mix), which
share covariates X with the judged rows but have no answers or labels. The
per-row calibrated AIPW scores φᵢ = f̂(sᵢ, xᵢ) + w̃ᵢ(Yᵢ − f̂) (or the labels, for
``labeled``) have E[φ | X] = E[Y | X] when labels are missing at random; they
are transported by `core.transport` (DR, cross-fitted outcome model and
density ratio). Assumptions: covariate shift only (the answer's quality given
X does not depend on where the prompt came from), overlap of X. The
calibration's own jackknife variance is left out of the transported
interval (it is second order when the group has labels). Reference: Dahabreh
et al. 2020 (Stat. Med. 39).

Drift (`judge_drift`). Estimand: the judge's calibration offset in a time
window, E[Y − S | window], over the labelled rows (labels drawn at random
within a window). Windows, change tests and the change point come from
`core.drift`. A harsher judge shows up as a jump in the offset.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..core.drift import change_point, change_tests, regime_warning, window_labels, window_means
from ..core.estimate import Estimate, EstimateTable
from ..core.transport import fit_covariate_shift, pseudo_outcomes, transported_mean
from ..io import DataError, numeric_column, read_table, shared_covariates, source_of, time_column

TRANSPORTABLE = ("calibrated", "labeled")


def transport_judge_means(table: EstimateTable, data, target, *, covariates: Sequence[str], n_folds: int = 5,
                          seed: int = 0, level: float = 0.95) -> EstimateTable:
    """The group means of ``table`` (from `judge_means` on ``data``) transported to the ``target`` rows.

    Returns estimates named by group with method ``"<method>+transport"`` and
    estimand ``"<estimand> on the target"``; methods other than calibrated and
    labeled are not transported (a note says so). Target rows are shared by
    every group, so contrasts between transported groups pair on them.
    """
    df, tgt = read_table(data), read_table(target)
    Xs_all, Xt, _ = shared_covariates(df, tgt, covariates)
    out: list[Estimate] = []
    warnings: list[str] = []
    shifts: dict[bytes, object] = {}
    skipped = sorted({e.method for e in table if e.method not in TRANSPORTABLE})
    for est in table:
        if est.method not in TRANSPORTABLE:
            continue
        rows, phi = pseudo_outcomes(est)
        key = rows.tobytes()
        if key not in shifts:
            try:
                shifts[key] = fit_covariate_shift(Xs_all[rows], Xt, n_folds=n_folds, seed=seed)
            except ValueError as exc:
                raise DataError(f"{source_of(tgt)}: {exc}") from None
        t = transported_mean(phi, shifts[key], name=est.name, estimand=f"{est.estimand} on the target",
                             method=f"{est.method}+transport", level=level, rows=rows, target_row_offset=df.shape[0],
                             cluster=None if est.cluster is None else _data_clusters(est))
        t = t.with_(diagnostics={**t.diagnostics, "untransported": est.estimate})
        out.append(t)
        warnings.extend(t.warnings)
    if skipped:
        warnings.append(f"--target transports {' and '.join(TRANSPORTABLE)} estimates only; not {', '.join(skipped)}")
    return EstimateTable(out, list(dict.fromkeys(warnings)))


def _data_clusters(est: Estimate) -> np.ndarray:
    rows = np.asarray(est.rows)
    return np.asarray(est.cluster)[rows >= 0]


def judge_drift(data, *, judge: str, label: str, time: str, n_windows: int = 4, half_life: float = 1.0,
                level: float = 0.95) -> EstimateTable:
    """Per-window calibration offsets of the judge (mean label − judge score), change tests and a change point.

    Windows hold equal numbers of labelled rows. Estimates: ``"judge offset
    [window j/W]"``, ``"judge offset [weighted]"``, ``"judge offset [last -
    first window]"``, and where one break explains the drift ``"judge offset
    [change point]"`` and ``"judge offset [after - before break]"``.
    """
    df = read_table(data)
    t_all, is_date = time_column(df, time)
    score = numeric_column(df, judge, what="a number (judge scores must be numeric)")
    y = numeric_column(df, label, allow_missing=True, what="a number (labels must be numeric)")
    lab = np.flatnonzero(~np.isnan(y))
    if lab.size < 2 * n_windows:
        raise DataError(f"{source_of(df)}: only {lab.size} labelled rows; --time with {n_windows} windows needs at "
                        f"least {2 * n_windows}")
    offset = y[lab] - score[lab]
    t = t_all[lab]
    labels = window_labels(t, n_windows)
    name = "judge offset"
    estimand = f"mean {label} - {judge}"
    per = window_means(offset, labels, t, label=name, estimand=estimand, method="labeled", level=level,
                       time_is_date=is_date, rows=lab)
    tests = change_tests(per, name, estimand, half_life, method="labeled")
    out, warnings = [*per, *tests], []
    mixed = regime_warning(per, f"{name} ({judge} against {label} over {time})")
    if mixed:
        warnings.append(mixed + "; the judge's calibration changed, so a calibration pooled over time "
                                "relies on labels spread evenly over time")
    if tests[0].diagnostics["p_change"] < 1 - level:
        found, notes = change_point(offset, t, labels, label=name, estimand=estimand, method="labeled", level=level,
                                    time_is_date=is_date, rows=lab)
        out += found
        warnings += notes
    return EstimateTable(out, warnings)


def check_time_options(label_prob: str | None) -> None:
    """--time reads offsets from labelled rows drawn at random; known unequal labelling is not supported."""
    if label_prob is not None:
        raise DataError("--time with --label-prob is not supported: the per-window offsets assume labels drawn at "
                        "random within each window")
