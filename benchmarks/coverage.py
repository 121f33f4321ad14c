"""Coverage of every interval-giving estimator on its stage's world with known truth.

For each estimator and setting (good or thin overlap, few or many labels,
clustered or not) the world is drawn for many seeds; the table reports the
nominal level, the achieved coverage with its Monte-Carlo standard error
√(p(1−p)/R), the mean interval width, and the share of replications in
which the estimate carried a run-time warning. A row outside 93-97% at 95%
must either be fixed or come with a warning in that setting ("warned"
column); rows outside the band without one are listed at the end.

    python benchmarks/coverage.py --quick          # a few minutes
    python benchmarks/coverage.py --reps 200 --out COVERAGE.md   # the published table
    python benchmarks/coverage.py --stages alignment,shift,agents  # some stages only

Stages: engine (ATE), evaluation (judge means), routing (policy values),
alignment (style-controlled length effect, RATE), shift (transported judge
means), agents (sequential OPE of a new prompt).

One process, seeds 0..R-1 per row, so the table is reproducible.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

LEVEL = 0.95
BAND = (0.93, 0.97)


@dataclass
class Case:
    stage: str
    estimator: str
    setting: str
    run: Callable[[int], Iterable[tuple[object, float]]]  # seed -> (Estimate, truth) pairs


# --------------------------------------------------------------------------- engine (core.ate)


def _engine_cases(n: int) -> list[Case]:
    from llmcause.core.ate import aipw, ipw, regression_adjustment
    from llmcause.core.simulate import confounded_world

    def world(seed, overlap, clustered):
        w = confounded_world(n, seed=seed, overlap=overlap)
        if not clustered:
            return w.outcome, w.treatment, w.X, None
        rng = np.random.default_rng(10_000 + seed)
        cluster = np.arange(n) // 5  # prompts answered 5 times: a shared shock per prompt
        y = w.outcome + rng.normal(0, 1.0, size=n // 5 + 1)[cluster]
        return y, w.treatment, w.X, cluster

    def make(fit, overlap, clustered, use_cluster=True):
        def run(seed):
            y, a, X, cl = world(seed, overlap, clustered)
            yield fit(y, a, X, cl if use_cluster else None, seed), 1.0
        return run

    def fit_aipw(y, a, X, cl, seed):
        return aipw(y, a, X, cluster=cl, seed=seed, sensitivity_cf=None)

    def fit_ipw(y, a, X, cl, seed):
        return ipw(y, a, X, cluster=cl, seed=seed)

    def fit_ra(y, a, X, cl, seed):
        return regression_adjustment(y, a, X, cluster=cl)

    cases = []
    for name, fit in (("aipw", fit_aipw), ("ipw", fit_ipw), ("ra", fit_ra)):
        for overlap in ("good", "poor"):
            cases.append(Case("engine", f"{name} ATE", f"{overlap} overlap, n={n}", make(fit, overlap, False)))
        cases.append(Case("engine", f"{name} ATE", f"good overlap, clustered (5 rows/cluster), cluster-robust",
                          make(fit, "good", True)))
    cases.append(Case("engine", "aipw ATE", "good overlap, clustered, errors ignoring the clusters",
                      make(fit_aipw, "good", True, use_cluster=False)))
    return cases


# --------------------------------------------------------------------------- evaluation (judge means)


def _evaluation_cases(n_prompts: int) -> list[Case]:
    from llmcause.evaluation.means import judge_means
    from llmcause.evaluation.simulate import judge_world

    models = {"model-a": (0.6, 0.3, False), "model-b": (0.2, 0.0, True)}

    def make(method, fraction, clustered):
        def run(seed):
            w = judge_world(n_prompts, models, label_fraction=fraction, seed=seed)
            table = judge_means(w.frame, judge="judge_score", label="label", group="model",
                                cluster="prompt_id" if clustered else None, methods=(method,), seed=seed)
            for est in table:
                if est.method == method and est.name in w.truth:
                    yield est, w.truth[est.name]
        return run

    cases = []
    for method in ("ppi++", "calibrated"):
        for fraction, label in ((0.03, "few labels"), (0.2, "many labels")):
            for clustered in (False, True):
                setting = f"{label} ({fraction:.0%} of {n_prompts} prompts x 2 models)" + (
                    ", cluster-robust by prompt" if clustered else "")
                cases.append(Case("evaluation", f"{method} mean", setting, make(method, fraction, clustered)))
    return cases


# --------------------------------------------------------------------------- routing (off-policy values)


def _routing_cases(n: int) -> list[Case]:
    from llmcause.routing.evaluate import evaluate_policies
    from llmcause.routing.logs import read_log
    from llmcause.routing.simulate import synthetic_world

    def make(methods, overlap):
        def run(seed):
            w = synthetic_world(n, seed=seed, drift=0.0, overlap=overlap, population=50_000)
            c = w.columns
            log = read_log(w.frame, action=c["action"], reward=c["reward"], propensity=c["propensity"],
                           features=w.features)
            table = evaluate_policies(log, ["always:large", "always:small"], methods=methods,
                                      estimands=("quality",), seed=seed, naive=False)
            for est in table:
                yield est, w.always(est.name.split(":", 1)[1])[0]
        return run

    cases = []
    for overlap, label in ((0.3, "good overlap"), (0.03, "thin overlap")):
        for method in ("dr", "snips", "ips", "el"):
            cases.append(Case("routing", f"{method} policy value",
                              f"{label} (uniform share {overlap:g}), n={n}, 2 policies", make((method,), overlap)))
    return cases


# --------------------------------------------------------------------------- alignment (style control, RATE)


def _alignment_cases(n_battles: int, n_texts: int) -> list[Case]:
    from llmcause.alignment.battles import prepare_battles
    from llmcause.alignment.rate import rate_effects
    from llmcause.alignment.rewards import LengthSandboxReward, length_attribute
    from llmcause.alignment.rewriters import LengthRewriter
    from llmcause.alignment.simulate import simulate_battles, simulate_responses
    from llmcause.alignment.style import style_control_battles

    def style(seed):
        world = simulate_battles(n_battles, 6, seed=seed)
        battles = prepare_battles(world.battles, model_a="model_a", model_b="model_b", winner="winner",
                                  text_a="text_a", text_b="text_b", tokenizer="simple")
        yield style_control_battles(battles).style_effects()["length"], world.style_coefs["human"]["length"]

    def rate(seed):
        texts = simulate_responses(n_texts, seed=seed).responses["response"].tolist()
        attr = length_attribute(150)
        w = np.array([attr(t) for t in texts])
        reward = LengthSandboxReward(length_coef=0.5, threshold=150, seed=seed)
        table = rate_effects(texts, w, reward, LengthRewriter(150), attribute_of=attr, name="length").table
        yield table.get("length ATE", "rate"), reward.true_effect

    return [Case("alignment", "style-controlled length", f"{n_battles} battles, 6 models", style),
            Case("alignment", "rate ATE", f"{n_texts} responses, length rewriter", rate)]


# --------------------------------------------------------------------------- shift (transport)


def _shift_cases(n: int) -> list[Case]:
    from llmcause.evaluation.means import judge_means
    from llmcause.evaluation.shift import transport_judge_means
    from llmcause.evaluation.simulate import prompt_mix_world

    def make(shift):
        def run(seed):
            world = prompt_mix_world(n, n, shift=shift, label_fraction=0.15, seed=seed)
            cov = ["difficulty", "topic"]
            table = judge_means(world.frame, judge="judge_score", label="label", group="model",
                                cluster="prompt_id", covariates=cov, methods=["calibrated"], seed=seed)
            moved = transport_judge_means(table, world.frame, world.target, covariates=cov, seed=seed)
            for est in moved:
                if est.method == "calibrated+transport" and est.name in world.truth_target:
                    yield est, world.truth_target[est.name]
        return run

    return [Case("shift", "transported calibrated mean", f"shift {s:g}, {n} source and {n} target prompts",
                 make(s)) for s in (0.5, 1.5)]


# --------------------------------------------------------------------------- agents (sequential OPE)


def _agents_cases(n: int) -> list[Case]:
    from llmcause.agents.ope import sequential_ope_study
    from llmcause.agents.simulate import careful_agent, population_success, simulate_tool_use

    truth = population_success(careful_agent())

    def make(method):
        def run(seed):
            logs = simulate_tool_use(n, seed=seed, truth=False)
            table = sequential_ope_study(logs.episodes, careful_agent(), target_name="careful", seed=seed,
                                         methods=(method,))
            yield table.get("careful", method), truth
        return run

    return [Case("agents", f"{m} value of a new prompt", f"tool-use world, {n} logged episodes", make(m))
            for m in ("dr", "wpdis")]


# --------------------------------------------------------------------------- running


def run_case(case: Case, reps: int) -> dict:
    hits, widths, warned, total = [], [], 0, 0
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for seed in range(reps):
            for est, truth in case.run(seed):
                total += 1
                if not (math.isfinite(est.ci_low) and math.isfinite(est.ci_high)):
                    hits.append(False)
                    continue
                hits.append(est.ci_low <= truth <= est.ci_high)
                widths.append(est.ci_high - est.ci_low)
                warned += bool(est.warnings)
    p = float(np.mean(hits))
    return {"stage": case.stage, "estimator": case.estimator, "setting": case.setting, "intervals": total,
            "coverage": p, "mc_se": math.sqrt(p * (1 - p) / total), "width": float(np.mean(widths)),
            "warned": warned / total, "seconds": time.perf_counter() - t0}


def verdict(row: dict) -> str:
    """Inside the band; outside but warned at run time in most replications; within 2 MC errors of the band
    ('borderline': too few replications to tell); or outside and not flagged."""
    lo, hi = BAND
    if lo <= row["coverage"] <= hi:
        return "ok"
    if row["warned"] >= 0.5:
        return "flagged at run time"
    slack = 2 * math.sqrt(LEVEL * (1 - LEVEL) / row["intervals"])  # 2 MC errors at the nominal coverage
    near = row["coverage"] + slack >= lo and row["coverage"] - slack <= hi
    return "borderline (within 2 MC errors)" if near else "OUTSIDE, not flagged"


def markdown(rows: list[dict], reps: int, options: str = "") -> str:
    lines = ["# Coverage of llmcause's intervals", "",
             f"Nominal level {LEVEL:.0%}; {reps} replications per row (seeds 0..{reps - 1}); "
             f"run by `{' '.join(['python benchmarks/coverage.py', *options.split()])}`. "
             "Coverage ± its Monte-Carlo standard error; width is "
             "the mean interval width; warned is the share of replications whose estimate carried a run-time "
             f"warning. Band: {BAND[0]:.0%}-{BAND[1]:.0%}.", "",
             "| stage | estimator | setting | intervals | coverage ± MC se | mean width | warned | verdict |",
             "|---|---|---|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['stage']} | {r['estimator']} | {r['setting']} | {r['intervals']} | "
                     f"{r['coverage']:.3f} ± {r['mc_se']:.3f} | {r['width']:.4g} | {r['warned']:.0%} | "
                     f"{verdict(r)} |")
    bad = [r for r in rows if verdict(r) == "OUTSIDE, not flagged"]
    lines += ["", "Rows outside the band without a run-time warning: " + (
        "none." if not bad else "; ".join(f"{r['estimator']} ({r['setting']})" for r in bad) + ".")]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few replications and small worlds (a few minutes)")
    parser.add_argument("--reps", type=int, default=None, help="replications per row (default 500; quick 40)")
    parser.add_argument("--stages", default="engine,evaluation,routing,alignment,shift,agents")
    parser.add_argument("--match", default=None, help="only rows whose estimator or setting contains this text")
    parser.add_argument("--out", type=Path, default=None, help="write the Markdown table here")
    parser.add_argument("--append", action="store_true", help="add the table to --out as a further section")
    args = parser.parse_args(argv)
    reps = args.reps or (40 if args.quick else 500)
    n_engine, n_prompts, n_routing = (600, 800, 1000) if args.quick else (2000, 2000, 3000)
    builders = {"engine": lambda: _engine_cases(n_engine), "evaluation": lambda: _evaluation_cases(n_prompts),
                "routing": lambda: _routing_cases(n_routing),
                "alignment": lambda: _alignment_cases(1200 if args.quick else 3000, 200 if args.quick else 400),
                "shift": lambda: _shift_cases(800 if args.quick else 1500),
                "agents": lambda: _agents_cases(300 if args.quick else 600)}
    rows = []
    for stage in args.stages.split(","):
        for case in builders[stage]():
            if args.match and args.match not in case.estimator and args.match not in case.setting:
                continue
            row = run_case(case, reps)
            rows.append(row)
            print(f"{row['stage']:<10} {row['estimator']:<22} {row['setting']:<62} "
                  f"{row['coverage']:.3f} ± {row['mc_se']:.3f}  width {row['width']:.4g}  warned {row['warned']:.0%}  "
                  f"{verdict(row)}  ({row['seconds']:.0f} s)", flush=True)
    text = markdown(rows, reps, " ".join(sys.argv[1:] if argv is None else argv))
    if args.out and args.append and args.out.exists():
        text = args.out.read_text(encoding="utf-8") + "\n" + text.replace("# Coverage of llmcause's intervals",
                                                                         "## Further run", 1)
    if args.out:
        tmp = args.out.with_name(f".{args.out.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(args.out)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
