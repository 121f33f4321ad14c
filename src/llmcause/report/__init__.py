"""Self-contained HTML reports: forest plot, naive-versus-causal table, diagnostics, warnings."""

from .html import ReportSection, figure_to_data_uri, render_report, write_report

__all__ = ["ReportSection", "figure_to_data_uri", "render_report", "write_report"]
