"""AlpacaEval 2.0 leaderboard: llmcause's LC win rates (glm and alpacaeval methods) against the published ones.

``python benchmarks/bench_alpacaeval.py --repo PATH`` with PATH an alpaca_eval
checkout or a bare clone (read with git). Steps:

1. Instruction difficulty, reconstructed. alpaca_eval's ``df_gamed.csv``
   (gamed-baseline annotations and difficulties) lives on the Hugging Face Hub,
   out of reach here. Each instruction's difficulty d is estimated by a
   one-parameter soft-label logistic MLE over every model whose annotations
   are in the repository, with that model's published weights as the
   length and intercept offsets and its published difficulty weight as the
   slope: logit p = w_len·tanh(s) + w_ng + w_diff·d, with a ridge on d
   (``--ridge``, default 0.3, chosen by step 2 among 0, 0.1, 0.3, 1, 3; alpaca_eval's own difficulties
   are L1-penalised fits too).
   In-sample: the same annotations are used again below.
2. Check of the reconstruction alone: alpaca_eval's ``predict_winrate``
   (meanₓ σ(w_ng + w_diff·dₓ)) from the published weights and the
   reconstructed d, against the published LC of every weighted model.
3. Gamed rows, reconstructed: the annotations of gpt4_1106_preview_verbose /
   _concise are absent from the public snapshot, so their rows take the
   lengths from those models' outputs and, as preference, the probability
   their published GLM predicts (a smooth stand-in for the judge's labels).
4. Every leaderboard model with annotations: the present ``glm`` (all models
   in one table, difficulty leave-one-model-out) and ``alpacaeval`` against
   the published LC: mean signed and absolute gap, how many 95% intervals
   hold the published value, seconds per model. With ``alpaca_eval``
   importable, also the reference implementation on the same rows.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import expit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from llmcause.alignment.lc_alpacaeval import METHOD, alpacaeval_lc_winrates, read_gamed  # noqa: E402
from llmcause.alignment.lc_winrate import lc_winrates  # noqa: E402
from llmcause.formats import read_alpacaeval  # noqa: E402

ANNOTATOR = "weighted_alpaca_eval_gpt4_turbo"
BASELINE = "gpt4_1106_preview"
GAMED = (f"{BASELINE}_verbose", f"{BASELINE}_concise")
WEIGHTS = f"src/alpaca_eval/metrics/weights/{ANNOTATOR}/length_controlled_v1/baseline_{BASELINE}.csv"
LEADERBOARD = f"src/alpaca_eval/leaderboards/data_AlpacaEval_2/{ANNOTATOR}_leaderboard.csv"
RIDGE = 0.3
W_LEN, W_DIFF, W_NG = "np.tanh(std_delta_len)", "instruction_difficulty", "not_gamed_baseline.astype(float)"


class Repo:
    """Files of an alpaca_eval checkout or bare clone; ``None`` for a file that is absent."""

    def __init__(self, path: str):
        self.path = Path(path)
        bare = subprocess.run(["git", "-C", str(path), "rev-parse", "--is-bare-repository"], capture_output=True,
                              text=True)
        self.bare = bare.returncode == 0 and bare.stdout.strip() == "true"

    def read(self, rel: str) -> str | None:
        if not self.bare:
            p = self.path / rel
            return p.read_text(encoding="utf-8") if p.is_file() else None
        out = subprocess.run(["git", "-C", str(self.path), "show", f"HEAD:{rel}"], capture_output=True)
        return out.stdout.decode("utf-8") if out.returncode == 0 else None


def soft_difficulty(s, y, wl, wd, wn, index, n_index, ridge=RIDGE, bound=50.0, iters=80):
    """Per-instruction penalised MLE of d in logit p = wl·tanh(s) + wn + wd·d, by bisection (vectorised).

    The score Σ wd·(y − p) − ridge·d falls monotonically in d, so bisection on
    [−bound, bound] finds its root; without the ridge an instruction every model
    loses (or wins) would have d at ±infinity (then it stops at the bound).
    """
    off = wl * np.tanh(s) + wn
    lo, hi = np.full(n_index, -bound), np.full(n_index, bound)
    for _ in range(iters):
        mid = (lo + hi) / 2
        g = np.bincount(index, weights=wd * (y - expit(off + wd * mid[index])), minlength=n_index) - ridge * mid
        lo, hi = np.where(g > 0, mid, lo), np.where(g > 0, hi, mid)
    return (lo + hi) / 2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repo", required=True, help="alpaca_eval checkout or bare clone")
    ap.add_argument("--ridge", type=float, default=RIDGE, help="penalty on each difficulty (a N(0, 1/ridge) prior)")
    ap.add_argument("--max-models", type=int, default=None, help="compare on the first N models only")
    args = ap.parse_args()
    warnings.simplefilter("ignore", FutureWarning)
    repo = Repo(args.repo)
    weights = pd.read_csv(io.StringIO(repo.read(WEIGHTS)), index_col=0)
    board = pd.read_csv(io.StringIO(repo.read(LEADERBOARD)), index_col=0)

    base = json.loads(repo.read(f"results/{BASELINE}/{ANNOTATOR}/annotations.json"))
    instructions = [r["instruction"] for r in base]
    pos = {t: i for i, t in enumerate(instructions)}
    frames, absent = {}, []
    t0 = time.perf_counter()
    for m in board.index:
        text = repo.read(f"results/{m}/{ANNOTATOR}/annotations.json")
        if text is None:
            absent.append(m)
            continue
        df = read_alpacaeval(pd.DataFrame(json.loads(text)))
        frames[m] = df.assign(model=m, index=df["instruction"].map(pos))
    print(f"leaderboard models: {len(board)}; with annotations in this snapshot: {len(frames)} "
          f"(read in {time.perf_counter() - t0:.1f} s)")

    # 1. difficulty from every annotated model with published weights
    rows = []
    for m, df in frames.items():
        if m == BASELINE or m not in weights.index or df["index"].isna().any():
            continue
        gap = df["length_1"] - df["length_2"]
        rows.append(pd.DataFrame({"model": m, "index": df["index"].astype(int), "s": gap / gap.std(),
                                  "y": df["p_2"], "wl": weights.loc[m, W_LEN], "wd": weights.loc[m, W_DIFF],
                                  "wn": weights.loc[m, W_NG]}))
    fit_rows = pd.concat(rows, ignore_index=True)
    d_hat = soft_difficulty(fit_rows["s"].to_numpy(), fit_rows["y"].to_numpy(),
                            fit_rows["wl"].to_numpy(), fit_rows["wd"].to_numpy(), fit_rows["wn"].to_numpy(),
                            fit_rows["index"].to_numpy(), len(instructions), ridge=args.ridge)
    print(f"difficulty: {len(instructions)} instructions from {len(rows)} models' annotations; "
          f"range [{d_hat.min():.2f}, {d_hat.max():.2f}], sd {d_hat.std():.2f}")

    # 2. predict_winrate with the published weights
    pw = weights.drop(index=[BASELINE], errors="ignore")
    pred = 100 * expit(pw[W_NG].to_numpy()[:, None] + pw[W_DIFF].to_numpy()[:, None] * d_hat[None, :]).mean(axis=1)
    pub = board["length_controlled_winrate"].reindex(pw.index)
    ok = pub.notna().to_numpy()
    gap_pred = pred[ok] - pub.to_numpy()[ok]
    in_fit = np.isin(pw.index[ok], list(frames))
    print(f"predict_winrate vs published LC, {ok.sum()} weighted models: mean |gap| {np.mean(np.abs(gap_pred)):.3f} "
          f"points, max {np.max(np.abs(gap_pred)):.3f}; models whose annotations fed d: {np.mean(np.abs(gap_pred[in_fit])):.3f} "
          f"({in_fit.sum()}), the others: {np.mean(np.abs(gap_pred[~in_fit])):.3f} ({(~in_fit).sum()})")

    # 3. gamed rows
    base_out = {r["instruction"]: r["output"] for r in json.loads(repo.read(f"results/{BASELINE}/model_outputs.json"))}
    gamed_parts = []
    for g in GAMED:
        outs = json.loads(repo.read(f"results/{g}/model_outputs.json"))
        idx = np.array([pos[r["instruction"]] for r in outs])
        l1 = np.array([len(base_out[r["instruction"]]) for r in outs], dtype=float)
        l2 = np.array([len(r["output"]) for r in outs], dtype=float)
        s = (l1 - l2) / np.std(l1 - l2, ddof=1)
        w = weights.loc[g]
        p = expit(w[W_LEN] * np.tanh(s) + w[W_DIFF] * d_hat[idx] + w[W_NG])
        order = np.argsort(idx, kind="stable")
        gamed_parts.append(pd.DataFrame({"model": g, "index": idx[order], "instruction": np.array(instructions)[idx[order]],
                                         "preference": p[order], "std_delta_len": s[order],
                                         "instruction_difficulty": d_hat[idx[order]], "not_gamed_baseline": False}))
        print(f"gamed rows {g}: {len(outs)}; mean reconstructed preference {100 * p.mean():.1f}% "
              f"(published raw win rate {board.loc[g, 'win_rate']:.1f}%)")
    df_gamed = pd.concat(gamed_parts, ignore_index=True)
    tmp = Path(tempfile.mkdtemp())
    gamed_path = tmp / "df_gamed.csv"
    df_gamed.to_csv(gamed_path, index=False)
    gamed = read_gamed(gamed_path)

    # 4. compare the methods with the leaderboard
    models = [m for m in frames if m != BASELINE and not np.isnan(board.loc[m, "length_controlled_winrate"])]
    models = models[: args.max_models] if args.max_models else models
    allrows = pd.concat([frames[m] for m in models], ignore_index=True)
    t0 = time.perf_counter()
    glm = lc_winrates(allrows["model"], allrows["p_2"], allrows["length_2"], allrows["length_1"],
                      instructions=allrows["instruction"], baseline=BASELINE)
    t_glm = (time.perf_counter() - t0) / len(models)
    ref = None
    try:
        import alpaca_eval.constants as ac
        import huggingface_hub.constants as hc
        import sklearn
        from alpaca_eval.metrics.glm_winrate import get_length_controlled_winrate

        snap = tmp / "hub" / "datasets--tatsu-lab--alpaca_eval"
        (snap / "refs").mkdir(parents=True)
        (snap / "refs" / "main").write_text("0" * 40)
        (snap / "snapshots" / ("0" * 40)).mkdir(parents=True)
        df_gamed.to_csv(snap / "snapshots" / ("0" * 40) / "df_gamed.csv", index=False)
        hc.HF_HUB_OFFLINE, ac.DEFAULT_CACHE_DIR = True, str(tmp / "hub")
        ref = {}
    except ImportError:
        pass
    table, t_ae = [], 0.0
    for m in models:
        df = frames[m]
        t0 = time.perf_counter()
        est = alpacaeval_lc_winrates(df["model"], df["p_2"], df["length_2"], df["length_1"], gamed,
                                     instructions=df["instruction"], positions=df["position"], baseline=BASELINE)
        t_ae += time.perf_counter() - t0
        ae, g = est.get(m, METHOD), glm.get(m, "length-controlled glm")
        row = {"model": m, "published": board.loc[m, "length_controlled_winrate"],
               "avg_length": board.loc[m, "avg_length"],
               "alpacaeval": 100 * ae.estimate, "ae_lo": 100 * ae.ci_low, "ae_hi": 100 * ae.ci_high,
               "glm": 100 * g.estimate, "glm_lo": 100 * g.ci_low, "glm_hi": 100 * g.ci_high,
               "ae_se_alpacaeval": 100 * ae.diagnostics["alpacaeval_se"], "ae_se": 100 * ae.se}
        if ref is not None and len(df) == len(instructions):  # the reference keys difficulty by row position
            ann = pd.DataFrame(json.loads(repo.read(f"results/{m}/{ANNOTATOR}/annotations.json")))
            with sklearn.config_context():
                row["reference"] = get_length_controlled_winrate(ann, save_weights_dir=None,
                                                                 is_warn_extreme_changes=False)["length_controlled_winrate"]
        table.append(row)
    res = pd.DataFrame(table).set_index("model")
    t_ae /= len(models)
    print(f"\n{len(models)} leaderboard models with annotations (baseline left out)")
    print("method      mean signed gap  mean |gap|  95% CIs holding the published LC  s/model")
    for name, lo, hi, t in (("glm", "glm_lo", "glm_hi", t_glm), ("alpacaeval", "ae_lo", "ae_hi", t_ae)):
        gap = res[name] - res["published"]
        cover = int(((res[lo] <= res["published"]) & (res["published"] <= res[hi])).sum())
        print(f"{name:<11} {gap.mean():+15.2f}  {gap.abs().mean():10.2f}  {cover:>3d} of {len(res):<29d} {t:.3f}")
    short = res["avg_length"] < res["avg_length"].median()
    for name in ("glm", "alpacaeval"):
        gap = res[name] - res["published"]
        print(f"{name}: mean signed gap, shorter half {gap[short].mean():+.2f}, longer half {gap[~short].mean():+.2f}")
    print(f"median interval half-width, alpacaeval: {np.median(res['ae_hi'] - res['alpacaeval']):.2f} points "
          f"(alpaca_eval's own SE, median: {res['ae_se_alpacaeval'].median():.2f}; ours: {res['ae_se'].median():.2f})")
    if ref is not None and "reference" in res:
        diff = (res["alpacaeval"] - res["reference"]).abs().dropna()
        print(f"alpaca_eval's get_length_controlled_winrate on the same rows ({len(diff)} models with all "
              f"{len(instructions)} instructions): max |difference| {diff.max():.2e} points")
    worst = (res["alpacaeval"] - res["published"]).abs().sort_values(ascending=False).head(5)
    print("largest |alpacaeval - published|: " + ", ".join(f"{m} {v:.2f}" for m, v in worst.items()))
    if os.environ.get("BENCH_CSV"):
        res.to_csv(os.environ["BENCH_CSV"])


if __name__ == "__main__":
    main()
