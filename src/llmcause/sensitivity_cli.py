"""`llmcause sensitivity`: how strong would a hidden confounder have to be to change the conclusion?

The sensemakr workflow: the estimate, the treatment's partial R² with the
outcome, the robustness values RV and RV_α, and bounds for confounders k
times as strong as observed benchmark covariates; the report draws the
contour of the adjusted estimate over the confounder's two strengths.
``--model ols`` follows Cinelli & Hazlett (2020) (`core.linear_ovb`);
``--model dml`` the partially linear DML model of Chernozhukov, Cinelli,
Newey, Sharma & Syrgkanis (2022) (`core.dml_ovb`).
"""

from __future__ import annotations

import math
from enum import Enum
from typing import Optional

import typer
from typing_extensions import Annotated

from ._lazy import lazy_module

from .clikit import JsonOption, ReportOption, SeedOption, data_errors, emit
from .io import DataError, check_output_path, covariate_matrix, numeric_column, parse_list, read_table, \
    require_columns, source_of

np = lazy_module("numpy")  # imported on first use: `llmcause --help` starts without it
pd = lazy_module("pandas")


class SensitivityModel(str, Enum):
    ols = "ols"
    dml = "dml"


def sensitivity_command(
    data: Annotated[str, typer.Argument(help="CSV, TSV, JSONL, JSON or Parquet file, one row per unit.")],
    treatment: Annotated[str, typer.Option("--treatment", "-t", help="Treatment column (binary or continuous).")],
    outcome: Annotated[str, typer.Option("--outcome", "-y", help="Numeric outcome column.")],
    covariates: Annotated[Optional[str], typer.Option("--covariates", "-x",
                          help="Comma-separated observed confounders.")] = None,
    categorical: Annotated[Optional[str], typer.Option(help="Comma-separated columns entered as fixed effects "
                                                           "(one-hot, first level dropped).")] = None,
    model: Annotated[SensitivityModel, typer.Option(help="ols (linear regression, Cinelli & Hazlett 2020) or dml "
                                                         "(partially linear DML, Chernozhukov et al. 2022).")]
    = SensitivityModel.ols,
    benchmark: Annotated[Optional[str], typer.Option(help="Comma-separated covariates to compare a hidden "
                                                          "confounder with.")] = None,
    kd: Annotated[str, typer.Option(help="Multiples of each benchmark's strength, comma-separated.")] = "1,2,3",
    q: Annotated[float, typer.Option(help="RV: the share of the estimate to explain away "
                                                                  "(1 = all of it).")] = 1.0,
    alpha: Annotated[float, typer.Option(min=0.001, max=0.5, help="Significance level of RV_alpha and the "
                                                                  "bounds' intervals.")] = 0.05,
    folds: Annotated[int, typer.Option(min=2, max=50, help="dml: cross-fitting folds.")] = 5,
    seed: SeedOption = 0,
    json_out: JsonOption = False,
    report: ReportOption = None,
) -> None:
    """Sensitivity of the effect of TREATMENT on OUTCOME to an unobserved confounder.

    Prints the estimate, the treatment's partial R² with the outcome, the
    robustness values RV (the strength that explains the estimate away) and
    RV_alpha (that makes it insignificant), and the estimate adjusted for
    confounders --kd times as strong as each --benchmark covariate.
    """
    from .core.estimate import Estimate, EstimateTable

    check_output_path(report, "--report", inputs=[data])
    df = read_table(data)
    src = source_of(df) if not isinstance(data, str) else data
    cov = parse_list(covariates, "--covariates")
    cat = parse_list(categorical, "--categorical")
    cov = [c for c in cov if c not in cat]
    bench = parse_list(benchmark, "--benchmark")
    multiples = _multiples(kd)
    if not (math.isfinite(q) and q > 0):
        raise DataError(f"--q {q:g}: must be a positive number")
    require_columns(df, [treatment, outcome, *cov, *cat])
    if treatment == outcome or {treatment, outcome} & set(cov + cat):
        raise DataError("--treatment, --outcome and the covariates must name different columns")
    for b in bench:
        if b not in cov and b not in cat:
            raise DataError(f"--benchmark {b!r} is not among --covariates or --categorical")
    y = numeric_column(df, outcome)
    d = numeric_column(df, treatment)
    if np.ptp(d) == 0:
        raise DataError(f"{src}: column {treatment!r} is constant ({d[0]:g} in every row); sensitivity needs "
                        "variation in the treatment")
    X, groups = _design(df, cov, cat)
    benchmarks = {b: groups[b] for b in bench}
    level = 1.0 - alpha
    n = y.shape[0]
    with data_errors(src):
        if model == SensitivityModel.ols:
            from .core.linear_ovb import linear_sensitivity

            shifted = {b: [i + 1 for i in cols] for b, cols in benchmarks.items()}  # after the intercept
            res = linear_sensitivity(y, d, np.column_stack([np.ones(n), X]), benchmarks=shifted, kd=multiples,
                                     q=q, alpha=alpha)
            from .core.inference import wald_interval

            lo, hi = wald_interval(res["estimate"], res["se"], level, res["dof"])
            main = Estimate("estimate", f"effect of {treatment} on {outcome}", "ols", res["estimate"], res["se"],
                            lo, hi, level, n, {"t": res["t"], "dof": res["dof"]}, df=float(res["dof"]))
            method = "ols"
        else:
            from .core.dml_ovb import dml_sensitivity

            if n < 2 * folds:
                raise DataError(f"{src}: {n} rows are too few for {folds} cross-fitting folds")
            res = dml_sensitivity(y, d, X, benchmarks=benchmarks, kd=multiples, q=q, alpha=alpha, n_folds=folds,
                                  seed=seed)
            from .core.inference import estimate_from_influence

            main = estimate_from_influence(res["estimate"], res["psi"], name="estimate",
                                           estimand=f"effect of {treatment} on {outcome}", method="dml-plr",
                                           level=level, diagnostics={"n_folds": folds,
                                                                     "treatment_residual_share":
                                                                         res["residual_share"]},
                                           keep_influence=False)
            method = "dml-plr"
    nan = float("nan")
    rv_text = f"q={q:g}"
    rows = [main,
            Estimate("partial_r2", f"partial R² of {treatment} with {outcome}", method, res["partial_r2"], nan, nan,
                     nan, level, n),
            Estimate("rv", f"robustness value ({rv_text})", method, res["rv"], nan, nan, nan, level, n),
            Estimate("rv_alpha", f"robustness value ({rv_text}, alpha={alpha:g})", method, res["rv_alpha"], nan,
                     nan, nan, level, n)]
    for b in res["bounds"]:
        diag = {k: v for k, v in b.items() if k not in ("estimate", "se", "ci_low", "ci_high", "benchmark")}
        rows.append(Estimate(f"bound:{b['benchmark']}:{b['k']:g}x",
                             f"effect adjusted for a confounder {b['k']:g}x as strong as {b['benchmark']}", method,
                             b["estimate"], b["se"], b["ci_low"], b["ci_high"], level, n, diag))
    capped = [f"{b['k']:g}x {b['benchmark']}" for b in res["bounds"] if b.get("r2yz_dx_capped")]
    warnings = [f"{', '.join(capped)}: such a confounder would explain more than all of the outcome's residual "
                "variance; its partial R² with the outcome is capped at 1 (use a smaller --kd)"] if capped else []
    table = EstimateTable(rows, warnings)
    notes = _notes(res, method, treatment, q, alpha)
    sections = [_contour_section(res, method, treatment, outcome)] if report is not None else []
    emit(table, command="sensitivity", as_json=json_out, report=report, sections=sections, notes=notes,
         title=f"Sensitivity of the effect of {treatment} on {outcome} ({method})")


def _multiples(text: str) -> list[float]:
    out = []
    for part in parse_list(text, "--kd"):
        try:
            k = float(part)
        except ValueError:
            raise DataError(f"--kd: {part!r} is not a number") from None
        if not (math.isfinite(k) and k > 0):
            raise DataError(f"--kd: {part!r} must be a positive number")
        out.append(k)
    return out


def _design(df: pd.DataFrame, cov: list[str], cat: list[str]) -> tuple[np.ndarray, dict[str, list[int]]]:
    """Covariates then fixed-effect dummies, and the design columns each named column occupies."""
    blocks, groups, start = [], {}, 0
    if cov:
        Xc, names = covariate_matrix(df, cov)
        blocks.append(Xc)
        for c in cov:
            groups[c] = [i for i, nm in enumerate(names) if nm == c or nm.startswith(f"{c}=")]
        start = Xc.shape[1]
    src = source_of(df)
    for c in cat:
        raw = df[c]
        missing = np.flatnonzero(raw.isna().to_numpy())
        if missing.size:
            raise DataError(f"{src}: column {c!r}, row {int(missing[0]) + 1}: value is missing")
        text = raw.astype(str).to_numpy()
        levels = np.unique(text)
        if levels.size < 2:
            raise DataError(f"{src}: column {c!r} has a single level ({levels[0]!r}); a fixed effect needs two")
        codes = np.searchsorted(levels, text)
        dummies = np.zeros((text.shape[0], levels.size - 1))
        rows = np.flatnonzero(codes > 0)
        dummies[rows, codes[rows] - 1] = 1.0
        blocks.append(dummies)
        groups[c] = list(range(start, start + dummies.shape[1]))
        start += dummies.shape[1]
    X = np.hstack(blocks) if blocks else np.zeros((df.shape[0], 0))
    return X, groups


def _notes(res: dict, method: str, treatment: str, q: float, alpha: float) -> list[str]:
    share = "" if q == 1 else f" {q:.0%} of"
    what = "residual variance" if method == "ols" else "residual variation (cf_y = cf_d)"
    notes = [f"robustness: a confounder explaining {res['rv']:.1%} of the {what} of both {treatment} and the outcome "
             f"would explain away{share} the estimate; {res['rv_alpha']:.1%} would make it insignificant at "
             f"alpha = {alpha:g}"]
    for b in res["bounds"]:
        notes.append(f"{b['k']:g}x {b['benchmark']}: adjusted estimate {b['estimate']:.4g}, "
                     f"{1 - alpha:.0%} CI [{b['ci_low']:.4g}, {b['ci_high']:.4g}]")
    return notes


def _contour_section(res: dict, method: str, treatment: str, outcome: str):
    from .report import ReportSection
    from .report.trust_plots import sensitivity_contour

    xs = [b.get("r2dz_x", b.get("cf_d", 0.0)) for b in res["bounds"]]
    ys = [b.get("r2yz_dx", b.get("cf_y", 0.0)) for b in res["bounds"]]
    lim = min(0.99, max([0.4, *(1.15 * v for v in xs + ys)]))
    if method == "ols":
        from .core.linear_ovb import adjusted_estimate_grid

        gx, gy, z = adjusted_estimate_grid(res["estimate"], res["se"], res["dof"], lim=lim)
        labels = ("partial R² of the confounder with the treatment", "partial R² of the confounder with the outcome")
        text = ("Adjusted estimate for a confounder of each strength (partial R² with treatment and outcome); the "
                "dashed red line is where the estimate would be explained away; diamonds mark confounders k times "
                "as strong as each benchmark covariate.")
    else:
        gx = np.linspace(0.0, lim, 101)
        gy = np.linspace(0.0, lim, 101)
        cd, cy = np.meshgrid(gx, gy)
        s = math.sqrt(res["sigma2"] * res["nu2"])
        sign = 1.0 if res["estimate"] >= 0 else -1.0
        z = res["estimate"] - sign * np.sqrt(cy * cd / (1.0 - cd)) * s
        labels = ("cf_d: gain in the Riesz representer's variation", "cf_y: share of residual outcome variation")
        text = ("The bound of the effect nearer zero (rho = 1) for a confounder of each strength; the dashed red "
                "line is where it reaches zero; diamonds mark confounders k times as strong as each benchmark "
                "(with rho = 1 here).")
    points = [{"x": x, "y": y, "label": f"{b['k']:g}x {b['benchmark']}", "value": float(
        res["estimate"] - np.sign(res["estimate"]) * math.sqrt(y * x / (1 - x)) * math.sqrt(res["sigma2"] * res["nu2"]))
        if method != "ols" else b["estimate"]} for x, y, b in zip(xs, ys, res["bounds"])]
    fig = sensitivity_contour(gx, gy, z, null=0.0, xlabel=labels[0], ylabel=labels[1], points=points,
                              title=f"{treatment} on {outcome}")
    return ReportSection("Sensitivity contour", text=text, figure=fig)
