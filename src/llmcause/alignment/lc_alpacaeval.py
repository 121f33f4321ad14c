"""AlpacaEval 2.0's length-controlled win rate as published (``length_controlled_v1``), with llmcause's CI.

Model. For the model's annotation on instruction x, with preference
p = P(model's answer preferred over the baseline's) in [0, 1],
    logit p = w_len·tanh(s) + w_diff·dₓ + w_ng,
s = (len(baseline) − len(model)) / sd (characters; sd the standard deviation
of that gap over the model's annotations), dₓ AlpacaEval's instruction
difficulty. The fit also holds the "gamed" rows (the baseline prompted to be
verbose and to be concise, against the baseline) with w_ng switched off and
weight λ/2 = 0.1 each: they pull w_len and w_diff toward the values that
make a pure change of length worthless. Soft labels (each row twice, as a
win with weight p and a loss with weight 1 − p), L1 penalty, no intercept,
C chosen among scikit-learn's ten default values by 5-fold GroupKFold
cross-validation of the weighted log-loss (liblinear, random_state 123).
This follows ``alpaca_eval/metrics/glm_winrate.py`` (written anew here).

Estimand. LC = meanₓ σ(w_diff·dₓ + w_ng): the win rate the model would have
if its answers were as long as the baseline's (s = 0), averaged over the
model's instructions.

Variance (llmcause's, not AlpacaEval's). Influence function of the weighted
M-estimator at the selected C: ψᵢ = σ(x₀ᵢβ̂) − LC + n·gᵀH⁻¹sᵢ, with sᵢ the
model row's score, H the weighted Hessian of all training rows (gamed rows
included) on the coordinates the L1 penalty left non-zero, and
g = meanₓ σ'(x₀β̂)x₀, clustered by instruction (`core.inference`). Treated as
fixed: the cross-validated C, the L1 active set (a zeroed weight stays
zero), the gamed rows (a fixed regulariser shared by every model) and the
instruction difficulties. AlpacaEval's own standard error, the SEM of the
predicted preferences, leaves the parameter uncertainty out; it is kept in
the diagnostics (``alpacaeval_se``).

Differences from alpaca_eval. Failed annotations (no preference) are left
out before the length sd is computed and before averaging (alpaca_eval
keeps them in both); rows are matched to the difficulties by instruction
text when the gamed file carries it, otherwise by position as alpaca_eval
does.

Assumptions. Those of the GLM (a shared length effect, logit-additive
difficulty); the gamed rows and difficulties describe the same annotator and
baseline; instructions are a sample from the population of interest.

Reference. Dubois, Galambosi, Liang & Hashimoto 2024, "Length-Controlled
AlpacaEval: A Simple Way to Debias Automatic Evaluators" (arXiv 2404.04475).
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.special import expit

from ..core.estimate import Estimate, EstimateTable
from ..core.inference import estimate_from_influence

ESTIMAND = "length-controlled win rate"
METHOD = "alpacaeval length_controlled_v1"
FEATURES = ("np.tanh(std_delta_len)", "instruction_difficulty", "not_gamed_baseline.astype(float)")
GAMED_LAMBDA = 0.2  # weight of the gamed baselines' rows, shared by the two of them
CV_SPLITS = 5
SEED = 123
HF_DATASET_DIR = "datasets--tatsu-lab--alpaca_eval"
GAMED_FILE = "df_gamed.csv"
GAMED_COLUMNS = ("index", "preference", "std_delta_len", "instruction_difficulty")


@dataclass(frozen=True)
class GamedRows:
    """AlpacaEval's ``df_gamed.csv``: the gamed baselines' annotations and the instruction difficulties.

    ``index`` is the instruction's position in the AlpacaEval set, ``preference``
    P(gamed answer preferred) in [0, 1]; ``instruction`` the text when the file has it.
    """

    index: np.ndarray
    preference: np.ndarray
    std_delta_len: np.ndarray
    difficulty: np.ndarray
    not_gamed: np.ndarray
    instruction: np.ndarray | None = None
    source: str = "df_gamed.csv"

    def difficulty_of_index(self) -> dict:
        """Instruction position -> difficulty (its first row, as alpaca_eval reads it)."""
        out: dict = {}
        for k, d in zip(self.index.tolist(), self.difficulty.tolist()):
            out.setdefault(k, d)
        return out

    def difficulty_of_instruction(self) -> dict:
        out: dict = {}
        if self.instruction is not None:
            for k, d in zip(self.instruction.tolist(), self.difficulty.tolist()):
                out.setdefault(k, d)
        return out


def read_gamed(path) -> GamedRows:
    """Read a ``df_gamed.csv``; every problem is a DataError naming the file, column and row."""
    from ..io import DataError, numeric_column, read_table, require_columns, source_of

    df = read_table(path)
    src = source_of(df)
    require_columns(df, GAMED_COLUMNS)
    pref = numeric_column(df, "preference", lower=0, upper=1)
    sdl = numeric_column(df, "std_delta_len")
    diff = numeric_column(df, "instruction_difficulty")
    index = numeric_column(df, "index", lower=0)
    if np.any(index != np.round(index)):
        i = int(np.flatnonzero(index != np.round(index))[0])
        raise DataError(f"{src}: column 'index', row {i + 1}: {index[i]!r} is not an instruction position")
    if "not_gamed_baseline" in df.columns:
        raw = df["not_gamed_baseline"]
        text = raw.astype(str).str.strip().str.lower()
        ok = text.isin(["true", "false", "1", "0", "1.0", "0.0"]).to_numpy()
        if not ok.all():
            i = int(np.flatnonzero(~ok)[0])
            raise DataError(f"{src}: column 'not_gamed_baseline', row {i + 1}: {raw.iloc[i]!r} is not true/false")
        not_gamed = text.isin(["true", "1", "1.0"]).to_numpy()
    else:
        not_gamed = np.zeros(len(df), dtype=bool)
    instr = df["instruction"].astype(str).to_numpy() if "instruction" in df.columns else None
    return GamedRows(index=index.astype(int), preference=pref, std_delta_len=sdl, difficulty=diff,
                     not_gamed=not_gamed, instruction=instr, source=src)


def hf_cache_dirs(env=None) -> list[Path]:
    """Where the Hugging Face hub cache may be: $HF_HUB_CACHE, $HF_HOME/hub, ~/.cache/huggingface/hub."""
    env = os.environ if env is None else env
    dirs = []
    if env.get("HF_HUB_CACHE"):
        dirs.append(Path(env["HF_HUB_CACHE"]))
    if env.get("HF_HOME"):
        dirs.append(Path(env["HF_HOME"]) / "hub")
    xdg = env.get("XDG_CACHE_HOME")
    dirs.append((Path(xdg) if xdg else Path.home() / ".cache") / "huggingface" / "hub")
    return list(dict.fromkeys(dirs))


def find_gamed(env=None) -> Path | None:
    """A ``df_gamed.csv`` that alpaca_eval already downloaded into the local cache (never downloads).

    The snapshot ``refs/main`` points at wins; otherwise the newest snapshot holding the file.
    """
    for cache in hf_cache_dirs(env):
        repo = cache / HF_DATASET_DIR
        ref = repo / "refs" / "main"
        if ref.is_file():
            pointed = repo / "snapshots" / ref.read_text().strip() / GAMED_FILE
            if pointed.is_file():
                return pointed
        found = sorted((repo / "snapshots").glob(f"*/{GAMED_FILE}"), key=lambda p: p.stat().st_mtime)
        if found:
            return found[-1]
    return None


def match_difficulty(gamed: GamedRows, *, instructions=None, positions=None) -> tuple[np.ndarray, str]:
    """Each row's instruction difficulty from the gamed file: by instruction text when the file has it,
    else by position (the row's place among its model's annotations), as alpaca_eval does.

    Returns the difficulties and how they were matched; a row without one raises ValueError.
    """
    by_text = gamed.difficulty_of_instruction()
    if instructions is not None and by_text:
        instr = np.asarray(instructions).astype(str)
        d = np.array([by_text.get(k, np.nan) for k in instr.tolist()])
        miss = np.flatnonzero(np.isnan(d))
        if miss.size:
            raise ValueError(f"{miss.size} rows have an instruction that {gamed.source} does not hold, e.g. "
                             f"{instr[miss[0]][:60]!r}; give the difficulty with --difficulty")
        return d, "instruction text"
    if positions is None:
        raise ValueError(f"{gamed.source} has no instruction column, and the rows have no position to match")
    by_pos = gamed.difficulty_of_index()
    pos = np.asarray(positions).astype(int)
    d = np.array([by_pos.get(k, np.nan) for k in pos.tolist()])
    miss = np.flatnonzero(np.isnan(d))
    if miss.size:
        raise ValueError(f"position {pos[miss[0]]} is beyond the {len(by_pos)} instructions of {gamed.source}; "
                         "give the difficulty with --difficulty")
    return d, "position"


# --------------------------------------------------------------------------- the fit


def _soft_log_loss(y_true, y_pred, true_prob, true_sample_weight):
    """Mean weighted log-loss of the soft label behind each duplicated row (the CV score)."""
    t = np.where(np.asarray(y_true) == 1, true_prob, 1 - np.asarray(true_prob))
    q = np.clip(y_pred, 1e-15, 1 - 1e-15)
    return -np.mean((t * np.log(q) + (1 - t) * np.log(1 - q)) * true_sample_weight)


def _l1_kwargs(cls) -> dict:
    """L1 in the spelling of the installed scikit-learn (``penalty`` is deprecated from 1.8 on)."""
    params = inspect.signature(cls).parameters
    if "l1_ratios" in params and params["l1_ratios"].default == "warn":
        out = {"l1_ratios": (1.0,)}
        if "use_legacy_attributes" in params:
            out["use_legacy_attributes"] = False
        return out
    return {"penalty": "l1"}


def fit_length_controlled_v1(X, y, w, *, n_splits: int = CV_SPLITS, seed: int = SEED) -> tuple[np.ndarray, float]:
    """L1 logistic regression of soft labels ``y`` on ``X`` (no intercept) with row weights ``w``.

    Each row enters twice (label 1 with weight y·w, label 0 with weight (1 − y)·w),
    both copies in the same GroupKFold fold; C is chosen by the weighted soft
    log-loss. Returns the coefficients and the chosen C.
    """
    import sklearn
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.metrics import make_scorer
    from sklearn.model_selection import GroupKFold

    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    w = np.asarray(w, dtype=float)
    n = X.shape[0]
    X2 = np.vstack([X, X])
    label = np.r_[np.ones(n), np.zeros(n)]
    prob = np.r_[y, 1 - y]
    w2 = np.r_[w, w]
    groups = np.r_[np.arange(n), np.arange(n)]
    with sklearn.config_context(enable_metadata_routing=True):
        scorer = make_scorer(_soft_log_loss, response_method="predict_proba", greater_is_better=False)
        scorer = scorer.set_score_request(true_prob=True, true_sample_weight=True)
        model = LogisticRegressionCV(cv=GroupKFold(n_splits=n_splits), scoring=scorer, solver="liblinear",
                                     fit_intercept=False, dual=False, random_state=seed,
                                     **_l1_kwargs(LogisticRegressionCV))
        model.fit(X2, label, sample_weight=prob * w2, groups=groups, true_prob=prob, true_sample_weight=w2)
    c = np.ravel(model.C_)[0]
    return np.asarray(model.coef_, dtype=float).ravel(), float(c)


def alpacaeval_lc_winrate(preference, length_model, length_baseline, difficulty, gamed: GamedRows, *,
                          cluster=None, rows=None, level: float = 0.95, name: str = "model",
                          baseline: str = "baseline", lam: float = GAMED_LAMBDA) -> EstimateTable:
    """LC win rate of one model by ``length_controlled_v1``, and its raw win rate (method ``naive``).

    Parameters
    ----------
    preference : P(model's answer preferred) per annotation, in [0, 1] (½ a tie).
    length_model, length_baseline : the two answers' lengths in characters.
    difficulty : each row's AlpacaEval instruction difficulty (`match_difficulty`).
    gamed : the gamed baselines' rows (`read_gamed`).
    cluster : instruction ids (CR1 errors); rows are independent without it.
    """
    y = np.asarray(preference, dtype=float)
    n = y.shape[0]
    lm = np.asarray(length_model, dtype=float)
    lb = np.asarray(length_baseline, dtype=float)
    d = np.asarray(difficulty, dtype=float)
    if not (lm.shape[0] == lb.shape[0] == d.shape[0] == n):
        raise ValueError("preference, lengths and difficulty must have the same length")
    if not np.all(np.isfinite(y)) or np.any((y < 0) | (y > 1)):
        raise ValueError("preferences must lie in [0, 1]")
    if not np.all(np.isfinite(d)):
        raise ValueError("instruction difficulties must be finite")
    if n < 10:
        raise ValueError(f"model {name!r} has only {n} annotations against the baseline; need at least 10")
    gap = lb - lm  # alpaca_eval's sign: baseline minus model
    sd = float(np.std(gap, ddof=1))
    if not sd > 0:
        raise ValueError(f"model {name!r}: the length gap never varies, so length cannot be controlled")
    x_model = np.column_stack([np.tanh(gap / sd), d, np.ones(n)])
    x_gamed = np.column_stack([np.tanh(gamed.std_delta_len), gamed.difficulty, gamed.not_gamed.astype(float)])
    w_gamed = np.where(gamed.not_gamed, 1.0, lam / 2)
    X = np.vstack([x_gamed, x_model])  # gamed rows first, as alpaca_eval orders them
    w = np.r_[w_gamed, np.ones(n)]
    yy = np.r_[gamed.preference, y]
    coef, c_chosen = fit_length_controlled_v1(X, yy, w)

    x0 = x_model.copy()
    x0[:, 0] = 0.0  # answers as long as the baseline's
    p0 = expit(x0 @ coef)
    lc = float(np.mean(p0))
    active = np.flatnonzero(coef != 0)
    psi = p0 - lc
    if active.size:
        pa = expit(X @ coef)
        XA = X[:, active]
        hess = (XA * (w * pa * (1 - pa))[:, None]).T @ XA
        score = x_model[:, active] * (y - expit(x_model @ coef))[:, None]
        grad = (p0 * (1 - p0)) @ x0[:, active] / n
        psi = psi + n * score @ np.linalg.solve(hess, grad)
    shorter = float(np.mean(lm < lb))
    diag = {
        "baseline": baseline,
        "weights": {k: float(v) for k, v in zip(FEATURES, coef)},
        "C": c_chosen,
        "active_set": [FEATURES[j] for j in active],
        "alpacaeval_se": float(np.std(p0, ddof=1) / np.sqrt(n)),
        "raw_win_rate": float(np.mean(y)),
        "share_shorter_than_baseline": shorter,
        "length_sd": sd,
        "n_gamed_rows": int(gamed.preference.shape[0]),
        "gamed_source": gamed.source,
    }
    lc_est = estimate_from_influence(lc, psi, name=name, estimand=ESTIMAND, method=METHOD, level=level,
                                     cluster=cluster, rows=rows, diagnostics=diag)
    raw = estimate_from_influence(float(np.mean(y)), y - np.mean(y), name=name, estimand="win rate", method="naive",
                                  level=level, cluster=cluster, rows=rows, diagnostics={"baseline": baseline})
    return EstimateTable([lc_est, raw], [])


def alpacaeval_lc_winrates(models, preference, length_model, length_baseline, gamed: GamedRows, *,
                           instructions=None, positions=None, difficulty=None, level: float = 0.95,
                           baseline: str = "baseline", rows=None) -> EstimateTable:
    """``length_controlled_v1`` LC and raw win rates of every model against the baseline.

    Difficulty: the given values, else matched from ``gamed`` by instruction text
    or by ``positions`` (`match_difficulty`). Clustered by instruction when
    instructions are given.
    """
    models = np.asarray(models).astype(str)
    y = np.asarray(preference, dtype=float)
    lm = np.asarray(length_model, dtype=float)
    lb = np.asarray(length_baseline, dtype=float)
    rows = np.arange(y.shape[0]) if rows is None else np.asarray(rows)
    instr = None if instructions is None else np.asarray(instructions).astype(str)
    pos = None if positions is None else np.asarray(positions)
    out: list[Estimate] = []
    warnings: list[str] = []
    n_instr = len(gamed.difficulty_of_index())
    for m in sorted(set(models.tolist())):  # plain str: names reach messages as the user wrote them
        sel = models == m
        if difficulty is not None:
            d, how = np.asarray(difficulty, dtype=float)[sel], "given"
        else:
            try:
                d, how = match_difficulty(gamed, instructions=None if instr is None else instr[sel],
                                          positions=None if pos is None else pos[sel])
            except ValueError as exc:
                raise ValueError(f"model {m!r}: {exc}") from None
            if how == "position" and int(sel.sum()) != n_instr:
                warnings.append(f"{m}: difficulties matched by position although it has {int(sel.sum())} "
                                f"annotations for {n_instr} instructions (as alpaca_eval does): rows after a "
                                "missing instruction get another instruction's difficulty")
        table = alpacaeval_lc_winrate(y[sel], lm[sel], lb[sel], d, gamed,
                                      cluster=None if instr is None else instr[sel], rows=rows[sel], level=level,
                                      name=m, baseline=baseline)
        for e in table:
            out.append(e.with_(diagnostics={**e.diagnostics, "difficulty_source": how})
                       if e.method == METHOD else e)
        lc_share = table[0].diagnostics["share_shorter_than_baseline"]
        if min(lc_share, 1 - lc_share) < 0.1:
            warnings.append(f"{m}: {lc_share:.0%} of its answers are shorter than the baseline's, so the win rate "
                            "at equal length is an extrapolation")
    return EstimateTable(out, warnings)
