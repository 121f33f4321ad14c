"""Benchmark of the pretraining stage: one proxy run, a swarm on each executor, mixing-law quality.

1. One proxy run (Kneser–Ney order 5 on 1 MB, scored on 6 × 100 KB held
   out): time of fit + evaluation, against the 1-second goal.
2. A 96-run Dirichlet swarm executed serially, on a local process pool, and
   on Ray when it is installed (same runs, fresh in-memory stores).
3. Held-out Spearman of each mixing law: fitted on the first 64 mixtures of
   the swarm, judged on the 32 it never saw.

Usage: python benchmarks/bench_pretraining.py [--quick] [--workers N]
(--quick: order 3 on 250 KB and a 48-run swarm; under a minute).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time

import numpy as np


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small version (under a minute)")
    parser.add_argument("--workers", type=int, default=2, help="workers for the process pool and Ray")
    args = parser.parse_args(argv)

    import sklearn
    from scipy import stats

    import llmcause
    from llmcause.pretraining.campaign import run_design
    from llmcause.pretraining.corpus import load_corpus, mixture_blocks
    from llmcause.pretraining.designs import dirichlet_swarm
    from llmcause.pretraining.laws import LAWS, MixtureLaws, combine_target
    from llmcause.pretraining.ngram import KneserNeyLM, QuerySet
    from llmcause.pretraining.proxy import ProxyConfig
    from llmcause.runs import RunStore

    config = ProxyConfig(order=3, budget=250_000) if args.quick else ProxyConfig(order=5, budget=1_000_000)
    n_runs = 48 if args.quick else 96
    print(f"llmcause {llmcause.__version__}, numpy {np.__version__}, scikit-learn {sklearn.__version__}, "
          f"python {platform.python_version()}, {platform.machine()}")
    print(f"proxy: Kneser-Ney order {config.order}, {config.budget} training bytes, 6 x 100 KB held out")

    # 1. one proxy run
    corpus = load_corpus()
    t0 = time.perf_counter()
    queries = QuerySet.from_texts(dict(corpus.heldout), config.order)
    t_queries = time.perf_counter() - t0
    uniform = {d: 1 / 6 for d in corpus.names}
    times = []
    for seed in range(5):
        t0 = time.perf_counter()
        blocks = mixture_blocks(corpus, uniform, config.budget, seed)
        model = KneserNeyLM(config.order).fit(blocks)
        bpb = model.bits_per_byte(queries)
        times.append(time.perf_counter() - t0)
    one_run = float(np.median(times))
    print(f"held-out query set (once per process): {t_queries:.3f} s")
    print(f"one proxy run (sample + fit + score), median of 5: {one_run:.3f} s; mean bpb {np.mean(list(bpb.values())):.3f}")
    print(f"ratio proxy run vs 1 s goal: {one_run / 1.0:.3f} (n={config.budget})")

    # 2. the swarm on each executor
    design = dirichlet_swarm(corpus.names, n_runs - 1, seeds=1, config=config, design_seed=0)
    timings = {}
    results = None
    executors = ["serial", "process"]
    try:
        import ray
    except ImportError:
        ray = None
        print("ray: not installed (pip install 'llmcause[ray]'); skipped")
    else:
        executors.append("ray")
    for name in executors:
        extra = ""
        if name == "ray":
            t0 = time.perf_counter()
            ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
            extra = f" (+ {time.perf_counter() - t0:.1f} s ray.init)"
        t0 = time.perf_counter()
        summary, res = run_design(design, RunStore(":memory:"), executor=name, workers=args.workers, progress=False)
        timings[name] = time.perf_counter() - t0
        if name == "ray":
            ray.shutdown()
        assert summary.executed == n_runs and summary.failed == 0
        if results is None:
            results = res
        else:
            cols = [c for c in res.columns if c.startswith("bpb:")]
            assert np.allclose(res[cols].to_numpy(), results[cols].to_numpy()), "executors disagree"
        print(f"{n_runs}-run swarm, {name}: {timings[name]:.2f} s{extra}")
    for name in executors[1:]:
        print(f"ratio {name} ({args.workers} workers) vs serial: {timings[name] / timings['serial']:.3f} (n={n_runs})")

    # 3. mixing laws on unseen mixtures
    domains = list(corpus.names)
    W = results[[f"w:{d}" for d in domains]].to_numpy()  # one seed: one row per mixture, in design order
    Y = {d: results[f"bpb:{d}"].to_numpy() for d in domains}
    cut = int(len(W) * 2 / 3)
    train, test = np.arange(cut), np.arange(cut, len(W))
    for law in LAWS:
        t0 = time.perf_counter()
        fitted = MixtureLaws(law).fit(W[train], {d: y[train] for d, y in Y.items()})
        preds = fitted.predict_domains(W[test])
        fit_time = time.perf_counter() - t0
        rhos = {t: stats.spearmanr(combine_target(preds, t), combine_target({d: y[test] for d, y in Y.items()}, t))
                .statistic for t in [*domains, "mean"]}
        per_domain = ", ".join(f"{d} {rhos[d]:.2f}" for d in domains)
        print(f"held-out spearman {law}: mean {rhos['mean']:.3f}; {per_domain} "
              f"({len(train)} training / {len(test)} new mixtures, fit {fit_time:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
