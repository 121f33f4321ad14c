"""Off-policy values with intervals on a large router log: llmcause against Open Bandit Pipeline and numpy.

Same arrays, one process: n logged rows, K models, a stochastic target policy,
given reward-model predictions q̂ (n, K). Timed:

- llmcause: `core.ope.ope_estimates(..., methods=("ips", "snips", "dr"))`: the three values, each
  with its influence values, SE and Wald interval, plus the overlap diagnostics (ESS, max weight,
  matched counts per model) and the input checks;
- obp 0.5.7: `InverseProbabilityWeighting`, `SelfNormalizedInverseProbabilityWeighting`,
  `DoublyRobust`: `estimate_policy_value` plus `estimate_interval` (its percentile bootstrap, a
  Python loop over resamples; B resamples per estimator, default 100 here, 10,000 in obp);
- the floor: the same three values and standard errors written as bare numpy, one pass over the
  weights each (no checks, no diagnostics).

Usage: python benchmarks/bench_routing.py [--quick] [--n N] [--models K] [--boot B]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
import types

import numpy as np


def make_data(n: int, k: int, seed: int):
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((n, k))
    logging = np.exp(logits)
    logging /= logging.sum(axis=1, keepdims=True)
    u = rng.random(n)
    action = (u[:, None] > np.cumsum(logging, axis=1)).sum(axis=1)
    action = np.minimum(action, k - 1)
    pscore = logging[np.arange(n), action]
    del logging, logits
    target = rng.dirichlet(np.ones(k), size=n)
    q_hat = rng.random((n, k))
    reward = (rng.random(n) < q_hat[np.arange(n), action]).astype(float)
    return reward, action, pscore, target, q_hat


def floor(reward, action, pscore, target, q_hat):
    """IPS, SNIPS and DR values and SEs in bare numpy (gathers by flat index, the fastest numpy way)."""
    n, k = target.shape
    flat = np.arange(0, n * k, k) + action
    w = np.take(target.reshape(-1), flat) / pscore
    wr = w * reward
    ips = wr.mean()
    ips_se = wr.std() / np.sqrt(n)
    snips = wr.sum() / w.sum()
    snips_se = np.sqrt(np.mean((w * (reward - snips)) ** 2)) / w.mean() / np.sqrt(n)
    phi = np.einsum("ij,ij->i", target, q_hat) + w * (reward - np.take(q_hat.reshape(-1), flat))
    dr = phi.mean()
    dr_se = phi.std() / np.sqrt(n)
    return (ips, ips_se), (snips, snips_se), (dr, dr_se)


def import_obp():
    """obp imports torch at module load for its neural learners only; give it a stand-in if torch is absent."""
    if importlib.util.find_spec("obp") is None:
        return None, "not installed (pip install --no-deps --ignore-requires-python obp==0.5.7 tqdm seaborn)"
    names = ("torch", "torch.nn", "torch.nn.functional", "torch.optim", "torch.utils", "torch.utils.data")
    stand_ins = {}
    if importlib.util.find_spec("torch") is None:
        class _Unavailable:
            def __init__(self, *a, **k):
                raise RuntimeError("torch stand-in")

        for name in names:
            mod = types.ModuleType(name)
            mod.__getattr__ = lambda attr: _Unavailable
            stand_ins[name] = mod
        for name in names[1:]:
            parent, child = name.rsplit(".", 1)
            setattr(stand_ins[parent], child, stand_ins[name])
        sys.modules.update(stand_ins)
    try:
        import obp
        import obp.ope
        return obp, obp.__version__
    except ImportError as exc:
        return None, f"cannot be imported ({exc})"
    finally:
        for name, mod in stand_ins.items():
            if sys.modules.get(name) is mod:
                del sys.modules[name]


def best_of(fn, repeats: int):
    best, out = np.inf, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200,000 rows (under a minute)")
    parser.add_argument("--n", type=int, default=None, help="rows (default 10,000,000; --quick 200,000)")
    parser.add_argument("--models", type=int, default=5)
    parser.add_argument("--boot", type=int, default=100, help="obp bootstrap resamples per estimator")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    n = args.n or (200_000 if args.quick else 10_000_000)
    k = args.models
    import scipy

    from llmcause import __version__
    from llmcause.core.ope import ope_estimates

    print(f"routing OPE benchmark: n={n:,} rows, K={k} models, numpy {np.__version__}, scipy {scipy.__version__}, "
          f"llmcause {__version__}")
    t0 = time.perf_counter()
    reward, action, pscore, target, q_hat = make_data(n, k, args.seed)
    print(f"data made in {time.perf_counter() - t0:.1f} s")
    repeats = 5

    t_ours, ests = best_of(lambda: ope_estimates(reward, action, pscore, target, q_hat,
                                                 methods=("ips", "snips", "dr")), repeats)
    for e in ests:
        print(f"  llmcause {e.method:6s} {e.estimate:.6f} [{e.ci_low:.6f}, {e.ci_high:.6f}]")
    print(f"llmcause IPS+SNIPS+DR with Wald CIs and diagnostics: {t_ours:.3f} s (best of {repeats})")

    t_floor, fl = best_of(lambda: floor(reward, action, pscore, target, q_hat), repeats)
    for (name, (v, se)), e in zip((("ips", fl[0]), ("snips", fl[1]), ("dr", fl[2])), ests):
        assert abs(v - e.estimate) < 1e-9 * max(1, abs(v)) and abs(se - e.se) < 1e-9 * max(1, se), name
    print(f"numpy floor (same values and SEs, bare): {t_floor:.3f} s (best of {repeats})")

    obp, version = import_obp()
    if obp is None:
        print(f"obp {version}: skipped")
    else:
        print(f"obp {version}, bootstrap B={args.boot} per estimator (obp's default is 10,000)")
        estimators = [obp.ope.InverseProbabilityWeighting(), obp.ope.SelfNormalizedInverseProbabilityWeighting(),
                      obp.ope.DoublyRobust()]

        def run_obp():
            out = []
            for est in estimators:
                kw = dict(reward=reward, action=action, pscore=pscore, action_dist=target[:, :, None])
                if isinstance(est, obp.ope.DoublyRobust):
                    kw["estimated_rewards_by_reg_model"] = q_hat[:, :, None]
                value = est.estimate_policy_value(**kw)
                interval = est.estimate_interval(**kw, alpha=0.05, n_bootstrap_samples=args.boot,
                                                 random_state=args.seed)
                out.append((value, interval))
            return out

        t_obp, res = best_of(run_obp, 1)
        for (value, interval), e in zip(res, ests):
            assert abs(value - e.estimate) < 1e-9 * max(1, abs(value)), (value, e.estimate)
            print(f"  obp {e.method:6s} {value:.6f} [{interval['95.0% CI (lower)']:.6f}, "
                  f"{interval['95.0% CI (upper)']:.6f}]")
        print(f"obp IPW+SNIPW+DR points and bootstrap intervals: {t_obp:.3f} s")
        print(f"ratio ips+snips+dr with CIs vs obp points+bootstrap(B={args.boot}): {t_ours / t_obp:.4f} (n={n})")
    print(f"ratio ips+snips+dr with CIs vs numpy floor: {t_ours / t_floor:.3f} (n={n})")


if __name__ == "__main__":
    main()
