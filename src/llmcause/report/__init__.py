"""Self-contained HTML reports: forest plot, naive-versus-causal table, diagnostics, warnings."""

import importlib

_WHERE = {"ReportSection": "html", "figure_to_data_uri": "html", "render_report": "html", "write_report": "html"}

__all__ = ["ReportSection", "figure_to_data_uri", "render_report", "write_report"]


def __getattr__(name: str):
    # imported on first use, so that `llmcause --help` loads neither scikit-learn nor pandas
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])
