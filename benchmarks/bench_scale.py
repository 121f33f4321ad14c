"""Logs larger than memory: PPI++ by model and DR by policy out of core, against a bare pyarrow scan.

For each size n (default 10⁸ rows; ``--quick`` 10⁷; ``--rows`` to choose) the
script writes a judge-score log and a router log as multi-file Parquet
(10⁶ rows a file, generated file by file so the generator's memory stays
small), then times, each in a fresh process so that its peak RSS is its own:

- ``scan``: a bare pyarrow.dataset scan of the same columns in batches (the I/O
  and decode floor);
- ``ppi++``: `evaluation judge --method ppi++ --group model` out of core;
- ``dr``: `routing evaluate --method dr` with two policies out of core
  (nuisances fitted on the default 200,000-row sample);
- ``style``: `alignment style --features length` out of core on a battle log
  (8 models, per-side lengths, 5% ties): one census pass, then one pass per
  Newton step (its time is also shown per pass);
- with ``--ray``, the same three on a local 2-CPU Ray cluster (``--engine ray``), timed
  once from a cold start (the job's first Ray Data run starts and imports the
  workers) and once warm (a second run in the same process); and ``read``, the
  engine's own floor: every batch of the judge columns read the engine's way
  (labels as dictionaries) and handed to a function that does nothing, on
  each engine (warm for Ray).

Each job runs ``--repeat`` times (default 3), all jobs in turn, and its median
time is reported (ratios of medians), with the largest peak RSS of its runs.
It prints ``ratio <what>: <time / floor> (n=<rows>)`` lines, the peak RSS of
each job, and writes a log-log plot of time against rows (``--plot``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

FILE_ROWS = 1_000_000
MODELS = np.array(["model-a", "model-b", "model-c", "model-d"])


def write_judge(root: Path, n: int, seed: int = 0) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i, start in enumerate(range(0, n, FILE_ROWS)):
        m = min(FILE_ROWS, n - start)
        model = rng.integers(0, 4, m)
        score = rng.normal(3.0, 1.0, m) + 0.1 * model
        human = 0.2 * score + rng.normal(0, 0.3, m)
        labelled = rng.random(m) < 0.001
        pq.write_table(pa.table({"model": MODELS[model], "score": score,
                                 "human": np.where(labelled, human, np.nan)}), root / f"part-{i:05d}.parquet")


def write_router(root: Path, n: int, seed: int = 1) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i, start in enumerate(range(0, n, FILE_ROWS)):
        m = min(FILE_ROWS, n - start)
        x = rng.normal(size=m)
        p_big = 1 / (1 + np.exp(-0.8 * x))
        big = rng.random(m) < p_big
        quality = 0.5 + 0.2 * big + 0.1 * x * big + rng.normal(0, 0.2, m)
        pq.write_table(pa.table({"model": np.where(big, "big", "small"), "quality": quality,
                                 "p": np.where(big, p_big, 1 - p_big), "x": x,
                                 "choice": np.where(x > 0.3, "big", "small")}), root / f"part-{i:05d}.parquet")


def write_battles(root: Path, n: int, seed: int = 2) -> None:
    """Battles between 8 models with per-side answer lengths (precomputed style counts), a vote and a prompt."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    strength = np.linspace(-1, 1, 8)
    names = np.array([f"m{j}" for j in range(8)])
    for i, start in enumerate(range(0, n, FILE_ROWS)):
        m = min(FILE_ROWS, n - start)
        a = rng.integers(0, 8, m)
        b = (a + rng.integers(1, 8, m)) % 8
        la, lb = rng.poisson(300, m), rng.poisson(300, m)
        gap = (la - lb) / (la + lb + 1.0)
        win = rng.random(m) < 1 / (1 + np.exp(-(strength[a] - strength[b] + 2.0 * gap)))
        winner = np.where(rng.random(m) < 0.05, "tie", np.where(win, "model_a", "model_b"))
        pq.write_table(pa.table({"model_a": names[a], "model_b": names[b], "winner": winner,
                                 "length_a": la, "length_b": lb}), root / f"part-{i:05d}.parquet")


def _rows_of(batch) -> int:
    return batch.n


def job(kind: str, path: str, engine: str) -> dict:
    """Run one timed job in this process; returns seconds and peak RSS (MB). Imports are done before the
    clock starts."""
    import pyarrow.dataset as pds

    if kind == "read":
        import llmcause.scan  # noqa: F401
    elif kind == "ppi++":
        from llmcause.evaluation.streamed import judge_means_streamed
    elif kind == "dr":
        from llmcause.routing.streamed import evaluate_policies_streamed
    elif kind == "style":
        from llmcause.alignment.streamed import style_control_streamed
    start = time.perf_counter()
    if kind.startswith("scan"):
        cols = {"scan-judge": ["model", "score", "human"], "scan-router": ["model", "quality", "p", "x", "choice"],
                "scan-battles": ["model_a", "model_b", "winner", "length_a", "length_b"]}[kind]
        rows = 0
        for batch in pds.dataset(path, format="parquet").to_batches(columns=cols, batch_size=262_144):
            rows += batch.num_rows
    elif kind == "read":
        from llmcause.scan import ParquetDataset, run_partitions

        counts = []
        run_partitions(ParquetDataset(path), ["model", "score", "human"], _rows_of, counts.append, engine=engine,
                       dictionary=["model"])
        rows = sum(counts)
    elif kind == "ppi++":
        table = judge_means_streamed(path, judge="score", label="human", group="model", methods=["ppi++"],
                                     engine=engine)
        rows = sum(e.n for e in table)
    elif kind == "dr":
        table = evaluate_policies_streamed(path, action="model", reward="quality", propensity="p", features="x",
                                           policies=["always:big", "column:choice"], methods=["dr"],
                                           engine=engine)
        rows = table[0].n
    elif kind == "style":
        result = style_control_streamed(path, model_a="model_a", model_b="model_b", winner="winner",
                                        features=["length"], engine=engine)
        rows = result.study.controlled.n
        extra = {"passes": result.passes}
    else:
        raise ValueError(kind)
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"kind": kind, "engine": engine, "seconds": seconds, "peak_rss_mb": peak_mb, "rows": int(rows),
            **(extra if kind == "style" else {})}


def run_job(kind: str, path: Path, engine: str = "local") -> dict:
    out = subprocess.run([sys.executable, __file__, "--job", kind, "--path", str(path), "--engine", engine],
                         capture_output=True, text=True)
    if out.returncode != 0:
        return {"kind": kind, "engine": engine, "error": (out.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="10^7 rows instead of 10^8")
    ap.add_argument("--rows", type=str, default=None, help="comma-separated sizes, e.g. 1000000,10000000")
    ap.add_argument("--ray", action="store_true", help="also time --engine ray on a local 2-CPU cluster")
    ap.add_argument("--dir", type=str, default=None, help="where to write the data (default: a temp dir)")
    ap.add_argument("--plot", type=str, default=None, help="write the time-against-rows plot here (PNG)")
    ap.add_argument("--repeat", type=int, default=3,
                    help="runs of each job, taken in turn (scan, job, scan, job, ...); the median is reported")
    ap.add_argument("--job", type=str, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--path", type=str, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--engine", type=str, default="local", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.job:
        engine = "ray" if args.engine.startswith("ray") else args.engine
        if engine == "ray":
            import ray

            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        if args.engine == "ray-warm":  # time a second run: Ray's workers already started and imported
            job(args.job, args.path, engine)
        result = job(args.job, args.path, engine)
        result["engine"] = args.engine
        print(json.dumps(result))
        return
    sizes = ([int(s) for s in args.rows.split(",")] if args.rows else [10_000_000 if args.quick else 100_000_000])
    base = Path(args.dir or tempfile.mkdtemp(prefix="bench_scale_"))
    import pyarrow

    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, pyarrow {pyarrow.__version__}, "
          f"load average {os.getloadavg()[0]:.1f}")
    results = []
    for n in sizes:
        judge, router, battles = base / f"judge-{n}", base / f"router-{n}", base / f"battles-{n}"
        t = time.perf_counter()
        if not judge.exists():
            write_judge(judge, n)
        if not router.exists():
            write_router(router, n)
        if not battles.exists():
            write_battles(battles, n)
        print(f"n={n}: data written in {time.perf_counter() - t:.1f} s to {base}")
        jobs = [("scan-judge", judge, "local"), ("ppi++", judge, "local"), ("scan-router", router, "local"),
                ("dr", router, "local"), ("scan-battles", battles, "local"), ("style", battles, "local")]
        if args.ray:
            jobs += [("read", judge, "local")]
            jobs += [(kind, path, engine) for engine in ("ray", "ray-warm")
                     for kind, path in (("ppi++", judge), ("dr", router), ("style", battles))]
            jobs += [("read", judge, "ray-warm")]
        runs: dict = {}
        for _ in range(max(1, args.repeat)):  # in turn, so that a slow spell of the machine hits every job
            for kind, path, engine in jobs:
                runs.setdefault((kind, engine), []).append(run_job(kind, path, engine))
        out = {}
        for (kind, engine), rs in runs.items():
            ok = [r for r in rs if "error" not in r]
            if not ok:
                out[(kind, engine)] = rs[0]
                print(f"  {kind:12s} {engine:5s} failed: {rs[0]['error']}")
                continue
            secs = sorted(r["seconds"] for r in ok)
            r = dict(ok[0], seconds=float(np.median(secs)), peak_rss_mb=max(r["peak_rss_mb"] for r in ok))
            out[(kind, engine)] = r
            print(f"  {kind:12s} {engine:8s} median {r['seconds']:.2f} s of {len(ok)} "
                  f"({', '.join(f'{x:.2f}' for x in secs)}), peak RSS {r['peak_rss_mb']:.0f} MB"
                  + (f", {r['passes']} passes" if "passes" in r else ""))
        results.append((n, out))
        floor_j, floor_r = out[("scan-judge", "local")], out[("scan-router", "local")]
        print(f"ratio ppi++ by model out of core vs pyarrow scan: "
              f"{out[('ppi++', 'local')]['seconds'] / floor_j['seconds']:.2f} (n={n})")
        print(f"ratio dr by policy out of core vs pyarrow scan: "
              f"{out[('dr', 'local')]['seconds'] / floor_r['seconds']:.2f} (n={n})")
        st, floor_b = out[("style", "local")], out[("scan-battles", "local")]
        if "error" not in st:
            print(f"ratio style (features) out of core vs pyarrow scan: {st['seconds'] / floor_b['seconds']:.2f}, "
                  f"per pass {st['seconds'] / st['passes'] / floor_b['seconds']:.2f} (n={n})")
        if args.ray:
            floor_l, floor_ray = out[("read", "local")], out[("read", "ray-warm")]
            if "error" not in floor_ray:
                print(f"engine floor (read every batch, no statistic): local {floor_l['seconds']:.2f} s, "
                      f"ray 2 workers (warm) {floor_ray['seconds']:.2f} s (n={n})")
            for kind in ("ppi++", "dr", "style"):
                for engine, how in (("ray", "cold start"), ("ray-warm", "warm workers")):
                    r = out[(kind, engine)]
                    if "error" in r:
                        print(f"{engine} {kind}: no ratio ({r['error']})")
                    else:
                        print(f"ratio {kind} ray 2 workers ({how}) vs local engine: "
                              f"{r['seconds'] / out[(kind, 'local')]['seconds']:.2f} (n={n})")
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5.5, 4))
        for kind, label in (("scan-judge", "pyarrow scan (judge columns)"), ("ppi++", "PPI++ by model"),
                            ("scan-router", "pyarrow scan (router columns)"), ("dr", "DR by policy"),
                            ("scan-battles", "pyarrow scan (battle columns)"), ("style", "style control (BT)")):
            pts = [(n, o[(kind, "local")]["seconds"]) for n, o in results if "error" not in o[(kind, "local")]]
            if pts:
                ax.plot(*zip(*pts), "o-", label=label)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("rows")
        ax.set_ylabel("seconds")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(args.plot, dpi=110)
        print(f"plot written to {args.plot}")


if __name__ == "__main__":
    main()
