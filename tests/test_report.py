from llmcause.core.estimate import Estimate, EstimateTable
from llmcause.report import ReportSection, render_report, write_report


def _table(name="<script>alert(1)</script>"):
    e = Estimate(name=name, estimand="mean & more", method="aipw", estimate=1.0, se=0.1, ci_low=0.8, ci_high=1.2,
                 n=10, diagnostics={"<b>key</b>": "<i>value</i>", "nested": {"a": [1, 2]}})
    return EstimateTable([e, e.with_(method="naive", estimate=2.0)], warnings=["<img src=x onerror=alert(1)>"])


def test_every_user_string_is_escaped():
    import pandas as pd

    html = render_report(_table(), title="<title>", command="llmcause ate <x>",
                         sections=[ReportSection("<sec>", text="<t>", frame=pd.DataFrame({"<c>": ["<v>"]}))])
    for raw in ["<script>", "<img src=x", "<b>key", "<i>value", "<title></title>", "<sec>", "<c>", "<v>", "<t>"]:
        assert raw not in html
    assert "&lt;script&gt;" in html and "&lt;img src=x onerror=alert(1)&gt;" in html


def test_report_is_self_contained_with_inline_plot(tmp_path):
    path = tmp_path / "report.html"
    write_report(path, _table("model-a"), title="t", truth={"model-a": 1.1})
    html = path.read_text()
    assert html.count("data:image/png;base64,") == 1
    assert "src='http" not in html and "href=" not in html
    assert "covered" in html  # the truth column appears when a truth is known


def test_report_bytes_are_reproducible(tmp_path):
    a, b = tmp_path / "a.html", tmp_path / "b.html"
    write_report(a, _table("m"), title="t")
    write_report(b, _table("m"), title="t")
    assert a.read_bytes() == b.read_bytes()
