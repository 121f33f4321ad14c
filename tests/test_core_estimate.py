import json
import math

import numpy as np
import pytest

from llmcause.core.estimate import JSON_KEYS, Estimate, EstimateTable
from llmcause.core.inference import estimate_from_influence


def _est(name="A", method="aipw", value=1.0, se=0.1):
    return Estimate(name=name, estimand="ATE", method=method, estimate=value, se=se, ci_low=value - 2 * se,
                    ci_high=value + 2 * se, n=10, diagnostics={"x": np.float64(1.5), "arr": np.arange(2)})


def test_json_form_has_exactly_the_design_keys():
    d = _est().to_dict()
    assert tuple(d) == JSON_KEYS
    assert d["diagnostics"] == {"x": 1.5, "arr": [0, 1]}
    json.dumps(d, allow_nan=False)


def test_non_finite_values_become_null():
    e = _est().with_(se=float("nan"), ci_low=-math.inf)
    d = e.to_dict()
    assert d["se"] is None and d["ci_low"] is None
    json.dumps(d, allow_nan=False)


def test_table_lookup_by_name_and_method():
    t = EstimateTable([_est("A"), _est("B"), _est("B", method="naive")], warnings=["w1"])
    assert t["A"].name == "A"
    assert t.get("B", "naive").method == "naive"
    with pytest.raises(KeyError, match="use get"):
        t["B"]
    with pytest.raises(KeyError, match="no estimate named"):
        t["C"]
    assert t[0].name == "A" and len(t) == 3


def test_table_collects_estimate_warnings_once():
    e = _est().with_(warnings=("poor overlap",))
    t = EstimateTable([e, e], warnings=["poor overlap", "other"])
    assert t.warnings == ["poor overlap", "other"]


def test_table_json_and_frame():
    t = EstimateTable([_est("A"), _est("B")], warnings=["careful"])
    doc = json.loads(t.to_json("ate"))
    assert doc["command"] == "ate" and doc["warnings"] == ["careful"]
    assert [e["name"] for e in doc["estimates"]] == ["A", "B"]
    frame = t.to_frame()
    assert list(frame.columns) == list(JSON_KEYS) and frame.shape == (2, len(JSON_KEYS))


def test_plot_and_rich_table():
    t = EstimateTable([_est("A"), _est("naive", method="naive", value=2.0)])
    ax = t.plot(truth={"A": 1.0})
    assert [tick.get_text() for tick in ax.get_yticklabels()] == ["A"]  # the naive difference beside the ATE
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["aipw", "naive", "truth"]
    table = t.rich_table("title")
    assert table.row_count == 2


def test_forest_plot_gives_each_estimand_its_own_axis():
    t = EstimateTable([_est("router"), _est("router").with_(estimand="cost"), _est("other")])
    ax = t.plot()
    panels = [[tick.get_text() for tick in a.get_yticklabels()] for a in ax.figure.axes]
    assert panels == [["router", "other"], ["router"]]  # quality and cost on separate axes
    assert [a.get_title(loc="left") for a in ax.figure.axes] == ["ATE", "cost"]


def test_forest_plot_puts_naive_and_causal_of_one_model_on_one_row():
    rows = [_est(m, method=meth, value=v) for m in ("m1", "m2") for meth, v in (("ppi++", 1.0), ("naive", 1.5))]
    ax = EstimateTable(rows).plot()
    assert [tick.get_text() for tick in ax.get_yticklabels()] == ["m1", "m2"]
    ys = sorted({round(float(line.get_ydata()[0])) for line in ax.get_lines() if len(line.get_ydata()) == 1})
    assert ys == [0, 1]


def test_pvalue_and_covers():
    rng = np.random.default_rng(0)
    psi = rng.standard_normal(400)
    e = estimate_from_influence(0.3, psi, name="m", estimand="mean", method="m")
    z = 0.3 / e.se
    from scipy import stats

    assert e.pvalue == pytest.approx(2 * stats.norm.sf(z))
    assert e.covers(0.3) and not e.covers(e.ci_high + 1e-9)


def test_notebook_html_escapes_and_greys_naive_rows():
    t = EstimateTable([_est("<script>alert(1)</script>"), _est("m", method="naive")], warnings=["<b>w</b>"])
    html = t._repr_html_()
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;b&gt;w" in html
    assert html.count("<tr") == 3 and html.count("color:#777") == 1
    assert "[0.800, 1.200] (95%)" in html
