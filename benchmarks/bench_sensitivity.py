"""Sensitivity analysis: llmcause against sensemakr (OLS) and DoubleML (DML), same data, one process.

OLS: the Darfur model of Cinelli & Hazlett (2020) (1276 rows, 6 covariates,
486 village fixed effects, benchmark `female` at 1x, 2x, 3x). llmcause's
`linear_sensitivity` against PySensemakr's workflow: the statsmodels fits of
the outcome and treatment regressions it needs, `sensitivity_stats`,
`ovb_partial_r2_bound`, `adjusted_estimate` and `adjusted_se` (PySensemakr's
`Sensemakr` class itself fails under pandas >= 2, so its functions are
called directly). `--quick` replicates the rows 1x, the full run 10x.

DML: the partially linear model with Ridge learners on identical folds,
one benchmark covariate: `dml_sensitivity` against DoubleMLPLR `fit` +
`sensitivity_analysis` + `sensitivity_benchmark` (n = 20,000; quick 5,000).
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import Ridge

from llmcause import __version__
from llmcause.core.crossfit import fold_ids, folds_to_splits
from llmcause.core.dml_ovb import dml_sensitivity
from llmcause.core.linear_ovb import linear_sensitivity

DARFUR = Path(__file__).resolve().parents[1] / "tests" / "data" / "sensitivity" / "darfur.csv"
COVS = ["age", "farmer_dar", "herder_dar", "pastvoted", "hhsize_darfur", "female"]


def time_it(fn, repeats: int):
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def bench_ols(copies: int, repeats: int) -> None:
    import sensemakr as smkr
    import statsmodels.api as sm

    df = pd.concat([pd.read_csv(DARFUR)] * copies, ignore_index=True)
    fe = pd.get_dummies(df["village"].astype(str), drop_first=True, dtype=float)
    X = np.column_stack([np.ones(len(df)), df[COVS].to_numpy(float), fe.to_numpy()])
    y, d = df["peacefactor"].to_numpy(float), df["directlyharmed"].to_numpy(float)
    female = COVS.index("female") + 1

    def ours():
        return linear_sensitivity(y, d, X, benchmarks={"female": [female]}, kd=[1, 2, 3])

    def theirs():
        out = sm.OLS(y, np.column_stack([d, X])).fit()
        treat = sm.OLS(d, X).fit()
        est, se, dof = float(out.params[0]), float(out.bse[0]), int(out.df_resid)
        stats = smkr.sensitivity_stats(estimate=est, se=se, dof=dof)
        r2y = smkr.partial_r2(t_statistic=float(out.tvalues[female + 1]), dof=dof)
        r2d = smkr.partial_r2(t_statistic=float(treat.tvalues[female]), dof=int(treat.df_resid))
        b = smkr.ovb_partial_r2_bound(r2dxj_x=r2d, r2yxj_dx=r2y, kd=[1, 2, 3])
        adj = smkr.adjusted_estimate(estimate=est, se=se, dof=dof, r2dz_x=b["r2dz_x"], r2yz_dx=b["r2yz_dx"])
        smkr.adjusted_se(se=se, dof=dof, r2dz_x=b["r2dz_x"], r2yz_dx=b["r2yz_dx"])
        return stats, adj

    t_ours, res = time_it(ours, repeats)
    t_theirs, (stats, adj) = time_it(theirs, repeats)
    assert abs(res["rv"] - stats["rv_q"]) < 1e-8 and abs(res["bounds"][0]["estimate"] - adj[0]) < 1e-8
    print(f"OLS: n={len(df)}, {X.shape[1]} regressors; llmcause {t_ours:.3f} s, sensemakr {t_theirs:.3f} s")
    print(f"ratio sensitivity ols vs sensemakr: {t_ours / t_theirs:.2f} (n={len(df)})")


def bench_dml(n: int, repeats: int) -> None:
    import doubleml as dml

    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, 10))
    d = X[:, 0] + 0.5 * X[:, 2] + rng.standard_normal(n)
    y = 0.3 * d + X[:, :4] @ np.array([1.0, -1.0, 0.5, 0.2]) + rng.standard_normal(n)
    folds = fold_ids(n, 5, seed=1)
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(10)]).assign(y=y, d=d)

    def ours():
        return dml_sensitivity(y, d, X, benchmarks={"x2": [2]}, kd=[1], folds=folds)

    def theirs():
        m = dml.DoubleMLPLR(dml.DoubleMLData(frame, "y", "d"), Ridge(), Ridge(), draw_sample_splitting=False)
        m.set_sample_splitting([folds_to_splits(folds)])
        m.fit()
        b = m.sensitivity_benchmark(["x2"])
        m.sensitivity_analysis(cf_y=float(b["cf_y"].iloc[0]), cf_d=float(b["cf_d"].iloc[0]),
                               rho=float(b["rho"].iloc[0]), level=0.975)
        return m

    t_ours, res = time_it(ours, repeats)
    t_theirs, m = time_it(theirs, repeats)
    assert abs(res["bounds"][0]["theta_lower"] - m.sensitivity_params["theta"]["lower"][0]) < 1e-8
    print(f"DML: n={n}, 10 covariates, 5 folds; llmcause {t_ours:.3f} s, DoubleML {t_theirs:.3f} s")
    print(f"ratio sensitivity dml vs DoubleML: {t_ours / t_theirs:.2f} (n={n})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    repeats = 3 if args.quick else 5
    print(f"llmcause {__version__}, numpy {np.__version__}, pandas {pd.__version__}; median of {repeats}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bench_ols(1 if args.quick else 10, repeats)
        bench_dml(5_000 if args.quick else 20_000, repeats)


if __name__ == "__main__":
    main()
