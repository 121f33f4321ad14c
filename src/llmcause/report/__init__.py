"""Self-contained HTML reports: forest plot, naive-versus-causal table, diagnostics, warnings."""

from .._lazy import lazy_exports

_WHERE = {"ReportSection": "html", "figure_to_data_uri": "html", "render_report": "html", "write_report": "html"}

__all__ = ["ReportSection", "figure_to_data_uri", "render_report", "write_report"]


# Names load from their submodule on first use, so `llmcause --help` loads neither scikit-learn nor pandas.
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
