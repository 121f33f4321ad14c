"""`llmcause sensitivity`: Cinelli & Hazlett's Darfur example, DoubleML's DML bounds, and bad input."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.linear_model import Ridge

from llmcause.cli import run
from llmcause.core.crossfit import fold_ids, folds_to_splits
from llmcause.core.dml_ovb import dml_sensitivity

DARFUR = Path(__file__).parent / "data" / "sensitivity" / "darfur.csv"
COVS = "age,farmer_dar,herder_dar,pastvoted,hhsize_darfur,female"
BASE = ["sensitivity", str(DARFUR), "-t", "directlyharmed", "-y", "peacefactor", "-x", COVS]


def _run(capsys, argv):
    code = run([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def darfur_doc():
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = run([*BASE, "--categorical", "village", "--benchmark", "female", "--json"])
    assert code == 0
    return {e["name"]: e for e in json.loads(buf.getvalue())["estimates"]}


def test_darfur_reproduces_the_published_values(darfur_doc):
    # Cinelli & Hazlett (2020), section 5 and Table 2: 0.097, partial R² 2.2%, RV 13.9%, RV_alpha 7.6%.
    assert round(darfur_doc["estimate"]["estimate"], 3) == 0.097
    assert round(darfur_doc["partial_r2"]["estimate"], 3) == 0.022
    assert round(darfur_doc["rv"]["estimate"], 3) == 0.139
    assert round(darfur_doc["rv_alpha"]["estimate"], 3) == 0.076
    assert darfur_doc["estimate"]["diagnostics"]["dof"] == 783
    assert list(darfur_doc)[4:] == ["bound:female:1x", "bound:female:2x", "bound:female:3x"]


def test_darfur_bounds_equal_sensemakr(darfur_doc):
    smkr = pytest.importorskip("sensemakr")
    sm = pytest.importorskip("statsmodels.formula.api")
    df = pd.read_csv(DARFUR)
    rhs = COVS.replace(",", " + ") + " + C(village)"
    outcome = sm.ols(f"peacefactor ~ directlyharmed + {rhs}", data=df).fit()
    treat = sm.ols(f"directlyharmed ~ {rhs}", data=df).fit()
    dof = int(outcome.df_resid)
    est, se = outcome.params["directlyharmed"], outcome.bse["directlyharmed"]
    ref = smkr.sensitivity_stats(estimate=float(est), se=float(se), dof=dof)
    assert darfur_doc["estimate"]["estimate"] == pytest.approx(est, rel=1e-9)
    assert darfur_doc["estimate"]["se"] == pytest.approx(se, rel=1e-9)
    assert darfur_doc["partial_r2"]["estimate"] == pytest.approx(ref["r2yd_x"], rel=1e-9)
    assert darfur_doc["rv"]["estimate"] == pytest.approx(ref["rv_q"], rel=1e-9)
    assert darfur_doc["rv_alpha"]["estimate"] == pytest.approx(ref["rv_qa"], rel=1e-9)
    r2y = smkr.partial_r2(t_statistic=outcome.tvalues["female"], dof=dof)
    r2d = smkr.partial_r2(t_statistic=treat.tvalues["female"], dof=int(treat.df_resid))
    bounds = smkr.ovb_partial_r2_bound(r2dxj_x=r2d, r2yxj_dx=r2y, kd=[1, 2, 3])
    adj = smkr.adjusted_estimate(estimate=float(est), se=float(se), dof=dof, r2dz_x=bounds["r2dz_x"], r2yz_dx=bounds["r2yz_dx"])
    adj_se = np.asarray(smkr.adjusted_se(se=float(se), dof=dof, r2dz_x=bounds["r2dz_x"], r2yz_dx=bounds["r2yz_dx"]))
    crit = stats.t.ppf(0.975, dof - 1)  # sensemakr's ovb_bounds uses dof; the long model has dof - 1 (diff < 1e-7)
    for i, k in enumerate((1, 2, 3)):
        got = darfur_doc[f"bound:female:{k}x"]
        assert got["diagnostics"]["r2dz_x"] == pytest.approx(bounds["r2dz_x"][i], rel=1e-8)
        assert got["diagnostics"]["r2yz_dx"] == pytest.approx(bounds["r2yz_dx"][i], rel=1e-8)
        assert got["estimate"] == pytest.approx(adj[i], rel=1e-8)
        assert got["se"] == pytest.approx(adj_se[i], rel=1e-8)
        assert got["ci_low"] == pytest.approx(adj[i] - crit * adj_se[i], rel=1e-8)
        assert got["ci_high"] == pytest.approx(adj[i] + crit * adj_se[i], rel=1e-8)
    # the published table: 0.0752, 0.0529, 0.0304 for 1x, 2x, 3x female
    assert [round(darfur_doc[f"bound:female:{k}x"]["estimate"], 4) for k in (1, 2, 3)] == [0.0752, 0.0529, 0.0304]


def test_dml_bounds_equal_doubleml_on_identical_folds():
    dml = pytest.importorskip("doubleml")
    rng = np.random.default_rng(5)
    n = 1500
    X = rng.standard_normal((n, 4))
    d = X[:, 0] + 0.6 * X[:, 2] + rng.standard_normal(n)
    y = 0.3 * d + X[:, 0] - X[:, 1] + 0.5 * X[:, 2] + rng.standard_normal(n)
    folds = fold_ids(n, 5, seed=1)
    ours = dml_sensitivity(y, d, X, benchmarks={"x2": [2]}, kd=[1, 2], folds=folds, alpha=0.05)
    frame = pd.DataFrame(X, columns=["x0", "x1", "x2", "x3"]).assign(y=y, d=d)
    ref = dml.DoubleMLPLR(dml.DoubleMLData(frame, "y", "d"), Ridge(), Ridge(), draw_sample_splitting=False)
    ref.set_sample_splitting([folds_to_splits(folds)])
    ref.fit()
    assert ours["estimate"] == pytest.approx(ref.coef[0], rel=1e-9)
    bench = ref.sensitivity_benchmark(["x2"])
    for b in ours["bounds"]:
        assert b["benchmark_cf_y"] == pytest.approx(bench["cf_y"].iloc[0], rel=1e-8)
        assert b["benchmark_cf_d"] == pytest.approx(bench["cf_d"].iloc[0], rel=1e-8)
        assert b["benchmark_rho"] == pytest.approx(bench["rho"].iloc[0], rel=1e-8)
        assert b["benchmark_delta_theta"] == pytest.approx(bench["delta_theta"].iloc[0], rel=1e-8)
        ref.sensitivity_analysis(cf_y=b["cf_y"], cf_d=b["cf_d"], rho=b["rho"], level=0.975)
        p = ref.sensitivity_params
        assert b["theta_lower"] == pytest.approx(p["theta"]["lower"][0], rel=1e-8)
        assert b["theta_upper"] == pytest.approx(p["theta"]["upper"][0], rel=1e-8)
        assert b["estimate"] == b["theta_lower"]  # the end nearer zero of a positive effect
    ref.sensitivity_analysis(cf_y=0.03, cf_d=0.03, rho=1.0, level=0.975)
    assert ours["rv"] == pytest.approx(ref.sensitivity_params["rv"][0], abs=1e-4)  # DoubleML: bounded Brent


def test_dml_cli_names_and_contour_report(capsys, tmp_path):
    report = tmp_path / "s.html"
    code, out, err = _run(capsys, [*BASE, "--model", "dml", "--benchmark", "female,pastvoted", "--kd", "1,2",
                                   "--json", "--report", report])
    assert code == 0, err
    names = [e["name"] for e in json.loads(out)["estimates"]]
    assert names == ["estimate", "partial_r2", "rv", "rv_alpha", "bound:female:1x", "bound:female:2x",
                     "bound:pastvoted:1x", "bound:pastvoted:2x"]
    html = report.read_text()
    assert "Sensitivity contour" in html and html.count("data:image/png") == 2


def test_capped_strength_warns(capsys):
    code, out, err = _run(capsys, [*BASE, "--benchmark", "female", "--kd", "200", "--json"])
    assert code == 0, err
    assert any("200x female" in w and "capped at 1" in w for w in json.loads(out)["warnings"])


def test_q_changes_the_robustness_value(capsys):
    _, out, _ = _run(capsys, [*BASE, "--q", "0.5", "--json"])
    doc = {e["name"]: e for e in json.loads(out)["estimates"]}
    _, out1, _ = _run(capsys, [*BASE, "--json"])
    doc1 = {e["name"]: e for e in json.loads(out1)["estimates"]}
    assert doc["rv"]["estimate"] < doc1["rv"]["estimate"]


@pytest.mark.parametrize("extra,needle", [
    (["--benchmark", "village"], "'village' is not among"),
    (["--kd", "1,x"], "--kd: 'x' is not a number"),
    (["--kd", "0"], "--kd: '0' must be a positive"),
    (["--q", "0"], "--q 0"),
    (["--categorical", "nope"], "no column 'nope'"),
    (["--categorical", "village", "--benchmark", "female", "--kd", "200"], "200 times as strong as"),
])
def test_bad_options_exit_2(capsys, extra, needle):
    code, out, err = _run(capsys, [*BASE, *extra])
    assert code == 2 and out == ""
    assert needle in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_bad_values_name_file_column_and_row(capsys, tmp_path):
    df = pd.read_csv(DARFUR).head(60)
    df["peacefactor"] = df["peacefactor"].astype(object)
    df.loc[7, "peacefactor"] = "high"
    path = tmp_path / "bad.csv"
    df.to_csv(path, index=False)
    code, _, err = _run(capsys, ["sensitivity", path, "-t", "directlyharmed", "-y", "peacefactor", "-x", "age"])
    assert code == 2 and str(path) in err and "'peacefactor'" in err and "row 8" in err
    df = pd.read_csv(DARFUR).head(60).assign(directlyharmed=1)
    df.to_csv(path, index=False)
    code, _, err = _run(capsys, ["sensitivity", path, "-t", "directlyharmed", "-y", "peacefactor", "-x", "age"])
    assert code == 2 and "is constant" in err
