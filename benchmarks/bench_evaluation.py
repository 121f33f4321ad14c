"""PPI++ mean with a confidence interval: llmcause against ppi_py and a plain numpy.mean floor.

Same arrays, one process: N judge scores without labels and n labelled rows (label and judge score).
Times are the best of several repeats. The floor is one numpy.mean over the N judge scores, the
least any estimator must do (read every score once). llmcause's PPI++ reads the unlabelled scores
twice (a sum and a dot product) and never copies them; ppi_py reshapes, weights, concatenates and
takes standard deviations.

Usage: python benchmarks/bench_evaluation.py [--quick]
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "unknown"


def best_times(fns: dict, rounds: int) -> tuple[dict, dict]:
    """Best time of each function over ``rounds`` interleaved rounds (robust to a busy shared machine)."""
    best = {k: float("inf") for k in fns}
    out = {}
    for _ in range(rounds):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            out[k] = fn()
            best[k] = min(best[k], time.perf_counter() - t0)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000,000 judge scores and 1,000 labels")
    args = parser.parse_args()
    N, n = (1_000_000, 1_000) if args.quick else (10_000_000, 10_000)
    repeats = 15 if args.quick else 9

    import ppi_py
    import sklearn

    import llmcause
    from llmcause.core.surrogate import ppi_mean

    rng = np.random.default_rng(0)
    quality = rng.uniform(size=n + N)
    judge = np.clip(0.2 + 0.7 * quality + 0.15 * rng.standard_normal(n + N), 0, 1)
    y = np.clip(quality[:n] + 0.1 * rng.standard_normal(n), 0, 1)
    yhat, yhat_unlabeled = judge[:n].copy(), judge[n:].copy()
    del judge, quality

    print(f"PPI++ mean with a 95% CI: N = {N:,} judge scores, n = {n:,} labels; best of {repeats} interleaved rounds")
    print(f"python {platform.python_version()}, numpy {np.__version__}, scikit-learn {sklearn.__version__}, "
          f"ppi-python {_version('ppi-python')}, llmcause {llmcause.__version__}")

    times, out = best_times({
        "floor": lambda: np.mean(yhat_unlabeled),
        "llmcause": lambda: ppi_mean(y, yhat, yhat_unlabeled, keep_influence=False),
        "ppi_py": lambda: ppi_py.ppi_mean_ci(y, yhat, yhat_unlabeled, alpha=0.05),
    }, repeats)
    t_floor, t_ours, t_ref = times["floor"], times["llmcause"], times["ppi_py"]
    est, ci = out["llmcause"], out["ppi_py"]
    lo, hi = (float(np.squeeze(v)) for v in ci)
    print(f"numpy.mean floor   {t_floor * 1e3:9.2f} ms")
    print(f"llmcause ppi_mean  {t_ours * 1e3:9.2f} ms   estimate {est.estimate:.6f}  CI [{est.ci_low:.6f}, "
          f"{est.ci_high:.6f}]  lambda {est.diagnostics['lambda']:.4f}")
    print(f"ppi_py ppi_mean_ci {t_ref * 1e3:9.2f} ms   CI [{lo:.6f}, {hi:.6f}]")
    print(f"largest CI difference: {max(abs(est.ci_low - lo), abs(est.ci_high - hi)):.2e}")
    print(f"ratio ppi++ vs ppi_py: {t_ours / t_ref:.3f} (n={N})")
    print(f"ratio ppi++ vs numpy.mean: {t_ours / t_floor:.3f} (n={N})")


if __name__ == "__main__":
    main()
