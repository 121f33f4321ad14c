"""Names are data: group, model and column names that look like rich markup or mathtext are shown as written.

Each stage's command runs on data whose names are hostile, with a table on stdout and an HTML report (plots):
exit 0, every name verbatim in the table, no traceback.
"""

from __future__ import annotations

import html

import matplotlib
import pytest

from llmcause.cli import run

HOSTILE = ["[/oops]", "model[v2]", "$\\frac{$", "gpt-4o ($5/M)"]


def _run(capsys, argv):
    code = run([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def _shown(out: str, report, names) -> None:
    text = report.read_text(encoding="utf-8")
    for name in names:
        assert name in out, (name, out)
        assert html.escape(name) in text, name


def test_evaluation_judge_groups(capsys, tmp_path):
    from llmcause.evaluation.simulate import judge_world

    frame = judge_world(150, seed=3).frame
    models = sorted(frame["model"].unique())
    frame["model"] = frame["model"].map(dict(zip(models, HOSTILE)))
    path, report = tmp_path / "judged.csv", tmp_path / "r.html"
    frame.to_csv(path, index=False)
    code, out, err = _run(capsys, ["evaluation", "judge", path, "--judge", "judge_score", "--label", "label",
                                   "--group", "model", "--method", "ppi++", "--report", report])
    assert code == 0, err
    _shown(out, report, HOSTILE[:len(models)])


def test_ate_column_names(capsys, tmp_path, world_frame):
    frame = world_frame.head(400).rename(columns={"treated": "[/oops]", "outcome": "$\\frac{$",
                                                  "x0": "gpt-4o ($5/M)", "x1": "model[v2]"})
    path, report = tmp_path / "units.csv", tmp_path / "r.html"
    frame.to_csv(path, index=False)
    code, out, err = _run(capsys, ["ate", path, "-t", "[/oops]", "-y", "$\\frac{$", "-x", "gpt-4o ($5/M),model[v2]",
                                   "--method", "ipw", "--report", report])
    assert code == 0, err
    assert "Effect of [/oops] on $\\frac{$" in out
    assert "Effect of [/oops] on $\\frac{$" in html.unescape(report.read_text(encoding="utf-8"))


def test_alignment_style_models(capsys, tmp_path):
    from llmcause.alignment.simulate import simulate_battles

    battles = simulate_battles(300, 4, seed=5).battles
    models = sorted(set(battles["model_a"]) | set(battles["model_b"]))
    rename = dict(zip(models, HOSTILE))
    battles["model_a"], battles["model_b"] = battles["model_a"].map(rename), battles["model_b"].map(rename)
    battles["winner"] = battles["winner"].map(lambda w: rename.get(w, w))
    path, report = tmp_path / "battles.csv", tmp_path / "r.html"
    battles.to_csv(path, index=False)
    code, out, err = _run(capsys, ["alignment", "style", path, "--model-a", "model_a", "--model-b", "model_b",
                                   "--winner", "winner", "--text-a", "text_a", "--text-b", "text_b",
                                   "--tokenizer", "simple", "--no-length-effect", "--report", report])
    assert code == 0, err
    _shown(out, report, HOSTILE)


def test_routing_evaluate_models(capsys, tmp_path):
    from llmcause.routing.simulate import synthetic_world

    frame = synthetic_world(600, seed=4).frame
    models = sorted(frame["model"].unique())
    names = dict(zip(models, HOSTILE[1:]))
    frame["model"] = frame["model"].map(names)
    path, report = tmp_path / "log.csv", tmp_path / "r.html"
    frame.to_csv(path, index=False)
    policies = [a for n in names.values() for a in ("--policy", f"always:{n}")]
    code, out, err = _run(capsys, ["routing", "evaluate", path, "-a", "model", "-y", "quality", "--propensity",
                                   "propensity", "-x", "difficulty", *policies, "--method", "ips",
                                   "--report", report])
    assert code == 0, err
    _shown(out, report, [f"always:{n}" for n in names.values()])


def test_pretraining_effects_columns(capsys, tmp_path):
    from llmcause.pretraining.simulate import past_runs

    table = past_runs(120, seed=2).table.rename(columns={"w:code": "w:[/oops]", "bpb:math": "bpb:gpt-4o ($5/M)"})
    path, report = tmp_path / "past.csv", tmp_path / "r.html"
    table.to_csv(path, index=False)
    code, out, err = _run(capsys, ["pretraining", "effects", path, "--confounders", "log_params,log_tokens",
                                   "--treatment", "w:[/oops]", "--losses", "bpb:gpt-4o ($5/M)", "--learner", "linear",
                                   "--report", report])
    assert code == 0, err
    _shown(out, report, ["[/oops]:gpt-4o ($5/M)"])


def test_warning_lines_are_not_markup(capsys):
    from llmcause.clikit import print_warnings

    print_warnings(["group [/oops] has 3 rows :smile: [bold]x[/bold]"])
    err = capsys.readouterr().err
    assert err.strip() == "warning: group [/oops] has 3 rows :smile: [bold]x[/bold]"


def test_tour_table_shows_bracketed_names():
    from rich.console import Console

    from llmcause.core.estimate import Estimate
    from llmcause.tour import TourRow, rich_tour_table

    est = Estimate(name="length [llm-judge] - length [human]", estimand="difference", method="model[v2]",
                   estimate=0.1, se=0.01, ci_low=0.08, ci_high=0.12, n=10)
    row = TourRow(stage="alignment", question="length [llm-judge] - length [human]", causal=est, truth=0.1)
    console = Console(width=200, record=True, file=open("/dev/null", "w"))
    console.print(rich_tour_table([row]))
    text = console.export_text()
    assert "length [llm-judge] - length [human]" in text and "model[v2]" in text


def test_forest_plot_and_report_figures_draw_names_literally():
    from llmcause.core.estimate import Estimate, EstimateTable
    from llmcause.report import figure_to_data_uri

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    table = EstimateTable([Estimate(name=n, estimand="mean", method="ppi", estimate=float(i), se=0.1,
                                    ci_low=i - 0.2, ci_high=i + 0.2, n=5) for i, n in enumerate(HOSTILE)])
    ax = table.plot(title="$\\frac{$")
    labels = ax.get_yticklabels()
    # One row per name (the method is a legend entry), each drawn exactly as written.
    assert [t.get_text() for t in labels] == list(HOSTILE)
    legend = [t for t in ax.get_legend().get_texts()] if ax.get_legend() is not None else []
    titles = [t for t in [ax.title, *ax.figure.texts] if t.get_text()]
    assert any(t.get_text() == "$\\frac{$" for t in titles)
    assert not any(t.get_parse_math() for t in [*labels, *legend, *titles])
    assert figure_to_data_uri(ax.figure).startswith("data:image/png")
    fig, ax = plt.subplots()
    ax.set_xlabel("$\\frac{$")
    ax.legend(handles=ax.plot([0, 1], label="gpt-4o ($5/M)"))
    assert figure_to_data_uri(fig).startswith("data:image/png")
