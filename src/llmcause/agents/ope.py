"""Value of a new agent policy from logged trajectories: sequential off-policy evaluation.

The logged trajectories carry the logging policy's probability of each
action; the target policy (an agent with a ``distribution(observation,
history)`` method) gives its probability of the same action in the same
state. `core.sequential_ope` turns these into trajectory-wise IS,
per-decision IS, weighted PDIS and doubly robust (Jiang & Li 2016)
estimates of the target's expected return, with the naive mean return of
the logs beside them.

The DR estimate needs a Q function of the target policy. It is fitted by
fitted-Q evaluation (Le, Voloshin & Yue 2019) on hashed words of the
history, the current observation and the action, with ridge regression,
cross-fitted over trajectories (the Q used on a trajectory was not fitted on
it). The outcome of an episode is its return; when the step rewards do not
add up to it, the difference is credited to the last step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..core.estimate import EstimateTable
from ..core.inference import estimate_from_influence
from ..core.sequential_ope import SEQUENTIAL_METHODS, sequential_ope
from .protocol import action_distribution
from .traces import Episode

N_HASH = 2**12


@dataclass
class LoggedArrays:
    """The (n, T) arrays of a set of trajectories under one target policy."""

    rewards: np.ndarray
    logging_prob: np.ndarray
    target_prob: np.ndarray
    mask: np.ndarray
    # per step: the target's distribution at the state (for DR), and the texts Q is fitted on
    target_dists: list
    histories: list


def logged_arrays(episodes: Sequence[Episode], target: Any) -> LoggedArrays:
    n, T = len(episodes), max(len(e.steps) for e in episodes)
    r, mu, pi = np.zeros((n, T)), np.ones((n, T)), np.ones((n, T))
    mask = np.zeros((n, T), bool)
    dists, hists = [], []
    for i, ep in enumerate(episodes):
        history: list[tuple[str, str]] = []
        row_d, row_h = [], []
        for t, s in enumerate(ep.steps):
            dist = dict(action_distribution(target, s.observation, history))
            r[i, t], mu[i, t], pi[i, t], mask[i, t] = s.reward, s.prob, dist.get(s.action, 0.0), True
            row_d.append(dist)
            row_h.append((list(history), s.observation))
            history.append((s.observation, s.action))
        r[i, len(ep.steps) - 1] += ep.total_return - sum(s.reward for s in ep.steps)
        dists.append(row_d)
        hists.append(row_h)
    return LoggedArrays(r, mu, pi, mask, dists, hists)


def _text(history, observation: str, action: str) -> str:
    past = " ".join(f"did_{_words(a)}" for _, a in history)
    return f"t{len(history)} {past} saw {observation} act_{_words(action)} {action}"


def _words(action: str) -> str:
    return action.split("[")[0].strip().replace(" ", "_")


def fitted_q(arrays: LoggedArrays, episodes: Sequence[Episode], *, gamma: float = 1.0, n_folds: int = 2,
             alpha: float = 1.0, seed: int = 0, clip: tuple[float, float] | None = None
             ) -> tuple[np.ndarray, np.ndarray]:
    """Cross-fitted FQE: (q_logged, v_target), each (n, T)."""
    from sklearn.feature_extraction.text import HashingVectorizer
    from sklearn.linear_model import Ridge

    n, T = arrays.rewards.shape
    vec = HashingVectorizer(n_features=N_HASH, alternate_sign=False, token_pattern=r"[^\s|:=,?\[\]*]+",
                            ngram_range=(1, 2), norm="l2")
    # logged (state, action) rows, and (state, candidate action) rows with the target's probabilities
    log_rows, cand_rows, cand_w, cand_of = [], [], [], []
    for i in range(n):
        for t in range(len(episodes[i].steps)):
            hist, obs = arrays.histories[i][t]
            log_rows.append((i, t, _text(hist, obs, episodes[i].steps[t].action)))
            for a, p in arrays.target_dists[i][t].items():
                if p > 0:
                    cand_rows.append(_text(hist, obs, a))
                    cand_w.append(p)
                    cand_of.append((i, t))
    X_log = vec.transform([x[2] for x in log_rows])
    X_cand = vec.transform(cand_rows)
    li = np.array([x[0] for x in log_rows]), np.array([x[1] for x in log_rows])
    ci = np.array([c[0] for c in cand_of]), np.array([c[1] for c in cand_of])
    cand_w = np.asarray(cand_w)
    fold = np.random.default_rng(seed).permutation(n) % n_folds
    lo, hi = clip if clip is not None else (-np.inf, np.inf)
    q_logged, v_target = np.zeros((n, T)), np.zeros((n, T))
    for f in range(n_folds):
        train = fold[li[0]] != f
        v = np.zeros((n, T + 1))  # V̂ of the next state, 0 after the end
        model = None
        for _ in range(T):  # T backups propagate the return back to the first step
            y = arrays.rewards[li] + gamma * v[li[0], li[1] + 1]
            model = Ridge(alpha=alpha).fit(X_log[train], y[train])
            qc = np.clip(model.predict(X_cand), lo, hi)
            v = np.zeros((n, T + 1))
            np.add.at(v, ci, cand_w * qc)
        test = ~train
        q_logged[li[0][test], li[1][test]] = np.clip(model.predict(X_log[test]), lo, hi)
        cand_test = fold[ci[0]] == f
        np.add.at(v_target, (ci[0][cand_test], ci[1][cand_test]), cand_w[cand_test] * qc[cand_test])
    return q_logged, v_target


def sequential_ope_study(episodes: Sequence[Episode], target: Any, *, methods: Sequence[str] = SEQUENTIAL_METHODS,
                         target_name: str = "target", gamma: float = 1.0, n_folds: int = 2, level: float = 0.95,
                         seed: int = 0) -> EstimateTable:
    """Estimates of the target policy's expected return, by method, with the naive logged mean beside."""
    episodes = list(episodes)
    if len(episodes) < 2 * n_folds:
        raise ValueError(f"{len(episodes)} trajectories are too few for off-policy evaluation")
    arrays = logged_arrays(episodes, target)
    q = v = None
    if "dr" in methods:
        returns = np.array([e.total_return for e in episodes])
        q, v = fitted_q(arrays, episodes, gamma=gamma, n_folds=n_folds, seed=seed,
                        clip=(min(0.0, returns.min()), max(0.0, returns.max())))
    ests = sequential_ope(arrays.rewards, arrays.logging_prob, arrays.target_prob, arrays.mask, q_logged=q,
                          v_target=v, gamma=gamma, methods=methods, name=target_name, estimand="value", level=level)
    disc = gamma ** np.arange(arrays.rewards.shape[1])
    logged = arrays.rewards @ disc
    naive = estimate_from_influence(float(logged.mean()), logged - logged.mean(), name=target_name,
                                    estimand="value", method="naive (logged mean)", level=level,
                                    keep_influence=False,
                                    diagnostics={"note": "the logging policy's own mean return"})
    zero = float(np.mean(arrays.target_prob[arrays.mask] == 0))
    table = EstimateTable([*ests, naive])
    if zero > 0:
        table.warnings.append(f"the target gives probability 0 to {zero:.1%} of the logged actions; those "
                              "trajectories carry no weight")
    return table


def sequential_ope_methods(text: str) -> list[str]:
    """Parse --method: one of is, pdis, wpdis, dr, or all."""
    t = text.strip().lower()
    if t == "all":
        return list(SEQUENTIAL_METHODS)
    if t not in SEQUENTIAL_METHODS:
        raise ValueError(f"--method {text!r}: use is, pdis, wpdis, dr or all")
    return [t]
