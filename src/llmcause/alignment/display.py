"""Terminal tables and report sections for `llmcause alignment` (Elo-scale leaderboards, effects)."""

from __future__ import annotations

from .._lazy import lazy_module

from ..clikit import print_warnings, stdout_console

np = lazy_module("numpy")  # imported on first use: the command line starts without them
pd = lazy_module("pandas")


def style_sections(study, lengths, hetero, notes):
    from ..report import ReportSection

    board = study.leaderboard().round(1)
    sections = [ReportSection("Leaderboard (Elo scale)", frame=board, figure=elo_figure(study),
                              text="Plain Bradley-Terry and style-controlled strengths, 1000 + 400 r / ln 10, with "
                                   "ranks with uncertainty (1 + the number of models whose lower bound is above "
                                   "this one's upper bound).", notes=notes)]
    effects = [{"feature": e.name, "log-odds per SD": e.estimate, "ci_low": e.ci_low, "ci_high": e.ci_high,
                "odds ratio": float(np.exp(e.estimate)), "p": e.pvalue} for e in study.style_effects()]
    sections.append(ReportSection("Style effects", frame=pd.DataFrame(effects).round(4)))
    if lengths is not None:
        rows = [{"method": e.method, "effect on P(a wins) per SD": e.estimate, "ci_low": e.ci_low,
                 "ci_high": e.ci_high} for e in lengths]
        sections.append(ReportSection("Effect of length, three ways", frame=pd.DataFrame(rows).round(4),
                                      text="Naive slope; style-controlled Bradley-Terry averaged over battles; "
                                           "cross-fitted partially linear DML with content controls."))
    if hetero is not None:
        rows = [{"estimate": d.name, "difference": d.estimate, "ci_low": d.ci_low, "ci_high": d.ci_high,
                 "p": d.diagnostics["pvalue"], "p (Holm)": d.diagnostics["p_holm"]} for d in hetero.differences]
        j = hetero.joint
        sections.append(ReportSection(f"Style effects by group (reference: {hetero.groups[0]})",
                                      frame=pd.DataFrame(rows).round(4),
                                      text=f"Joint Wald test that no style effect differs: chi2 = {j.estimate:.2f}, "
                                           f"df = {j.diagnostics['df']}, p = {j.diagnostics['pvalue']:.3g}."))
    sections.append(ReportSection("Assumptions", text="Logit additivity; style is not a proxy for unmeasured "
                                  "quality (length carries substance, so its coefficient may absorb real "
                                  "helpfulness); the DML length effect assumes the content features capture what "
                                  "longer answers say."))
    return sections


def elo_figure(study):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    board = study.leaderboard()
    n = board.shape[0]
    fig, ax = plt.subplots(figsize=(7.0, 0.45 * n + 1.3))
    ys = np.arange(n)[::-1]
    for off, label, color in ((0.15, "bt", "0.55"), (-0.15, "style", "C0")):
        ax.errorbar(board[f"elo_{label}"], ys + off, xerr=[board[f"elo_{label}"] - board[f"elo_{label}_low"],
                    board[f"elo_{label}_high"] - board[f"elo_{label}"]], fmt="o", color=color,
                    label="plain BT" if label == "bt" else "style-controlled")
    ax.set_yticks(ys)
    ax.set_yticklabels([str(m) for m in board["model"]], parse_math=False)
    ax.set_xlabel("Elo-scale strength with CI")
    ax.legend(loc="best")
    fig.tight_layout()
    return fig


def ci_text(lo, hi, fmt="{:.0f}"):
    return f"[{fmt.format(lo)}, {fmt.format(hi)}]"


def print_style(study, lengths, hetero, notes, warnings):
    from rich.table import Table

    console = stdout_console()
    board = study.leaderboard()
    t = Table(title=f"Model strengths, Elo scale ({study.level:.0%} CI; log-odds in --json)")
    for col in ("model", "battles", "BT", "CI", "rank", "style-controlled", "CI ", "rank ", "shift"):
        t.add_column(col, justify="left" if col == "model" else "right")
    for _, r in board.iterrows():
        shift = int(r["rank_shift"])
        t.add_row(str(r["model"]), str(int(r["battles"])), f"{r['elo_bt']:.0f}",
                  ci_text(r["elo_bt_low"], r["elo_bt_high"]), str(int(r["rank_bt"])), f"{r['elo_style']:.0f}",
                  ci_text(r["elo_style_low"], r["elo_style_high"]), str(int(r["rank_style"])),
                  f"{shift:+d}" if shift else "0")
    console.print(t)
    s = Table(title="Style effects (log-odds per SD of the style gap)")
    for col in ("feature", "effect", "CI", "odds ratio", "p"):
        s.add_column(col, justify="left" if col == "feature" else "right")
    for e in study.style_effects():
        s.add_row(str(e.name), f"{e.estimate:.3f}", ci_text(e.ci_low, e.ci_high, "{:.3f}"), f"{np.exp(e.estimate):.2f}",
                  f"{e.pvalue:.3g}")
    console.print(s)
    if lengths is not None:
        m = Table(title="Effect of one SD of length gap on P(a wins)")
        for col in ("method", "effect", "CI", "note"):
            m.add_column(col, justify="left" if col in ("method", "note") else "right")
        note = {"naive": "raw association", "style-controlled ame": "BT with style control, averaged",
                "dml-plr": "DML, content held fixed"}
        for e in lengths:
            extra = note.get(e.method, "")
            if e.method == "dml-plr":
                extra += f"; {e.diagnostics['treatment_residual_share']:.0%} of the gap's variance left"
            m.add_row(e.method, f"{e.estimate:.3f}", ci_text(e.ci_low, e.ci_high, "{:.3f}"), extra)
        console.print(m)
    if hetero is not None:
        h = Table(title=f"Style effects by group (reference: {hetero.groups[0]})")
        for col in ("feature", *hetero.groups, "difference", "p (Holm)"):
            h.add_column(col, justify="left" if col == "feature" else "right")
        for f in study.feature_names:
            cells = []
            for g in hetero.groups:
                e = hetero.effects[f"{f} [{g}]"]
                cells.append(f"{e.estimate:.3f} {ci_text(e.ci_low, e.ci_high, '{:.3f}')}")
            diffs = [d for d in hetero.differences if d.diagnostics["feature"] == f]
            diff = "; ".join(f"{d.estimate:+.3f}" for d in diffs)
            p = "; ".join(f"{d.diagnostics['p_holm']:.3g}" for d in diffs)
            h.add_row(f, *cells, diff, p)
        console.print(h)
        j = hetero.joint
        console.print(f"joint test that no style effect differs: chi2 = {j.estimate:.2f}, df = {j.diagnostics['df']}, "
                      f"p = {j.diagnostics['pvalue']:.3g}", highlight=False)
    for n in notes:
        console.print(n, highlight=False)
    print_warnings(warnings)


def print_lc(table, baseline):
    from rich.table import Table

    console = stdout_console()
    method = next((e.method for e in table if e.method != "naive"), "")
    t = Table(title=f"Win rate against {baseline} (%), with answers as long as the baseline's")
    for col in ("model", "n", "LC win rate", "CI", "AlpacaEval SE", "our SE", "raw win rate", "CI "):
        t.add_column(col, justify="left" if col == "model" else "right")
    for e in table:
        if e.method == "naive":
            continue
        raw = table.get(e.name, "naive")
        t.add_row(e.name, str(e.n), f"{100 * e.estimate:.1f}", ci_text(100 * e.ci_low, 100 * e.ci_high, "{:.1f}"),
                  f"{100 * e.diagnostics['alpacaeval_se']:.2f}", f"{100 * e.se:.2f}", f"{100 * raw.estimate:.1f}",
                  ci_text(100 * raw.ci_low, 100 * raw.ci_high, "{:.1f}"))
    console.print(t)
    console.print(f"method: {method}", highlight=False, markup=False)
    print_warnings(table.warnings)
