"""Plots for the trust analyses: the sensitivity contour and a bound against Γ.

Labels that come from the user (column names) are shown literally: dollar
signs are escaped so matplotlib never reads them as mathtext.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def literal(text: str) -> str:
    """A user string safe to draw as a matplotlib label (no mathtext)."""
    return str(text).replace("\\", "\\\\").replace("$", r"\$")


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def sensitivity_contour(x, y, z, *, null: float, xlabel: str, ylabel: str, points: Sequence[dict] = (),
                        title: str | None = None):
    """Contours of the adjusted estimate ``z`` (rows: y, columns: x), the ``null`` line dashed red.

    ``points``: dicts with ``x``, ``y``, ``label``, ``value`` (benchmarks), drawn as red diamonds.
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.2, 5.4))
    zmin, zmax = float(np.nanmin(z)), float(np.nanmax(z))
    levels = [v for v in np.linspace(zmin, zmax, 12) if abs(v - null) > 1e-12 * max(1.0, abs(null))]
    cs = ax.contour(x, y, z, levels=levels, colors="0.35", linewidths=0.8)
    ax.clabel(cs, fontsize=7, fmt="%.3g")
    if zmin <= null <= zmax:
        ax.contour(x, y, z, levels=[null], colors="C3", linewidths=1.5, linestyles="--")
    ax.plot([0], [0], "^", color="k")
    ax.annotate(f"unadjusted {z[0, 0]:.3g}", (0, 0), textcoords="offset points", xytext=(6, 6), fontsize=8)
    for p in points:
        ax.plot([p["x"]], [p["y"]], "D", color="C3", ms=6)
        ax.annotate(literal(f"{p['label']} ({p['value']:.3g})"), (p["x"], p["y"]), textcoords="offset points",
                    xytext=(6, -10), fontsize=8, color="C3")
    ax.set_xlim(float(x[0]), float(x[-1]))
    ax.set_ylim(float(y[0]), float(y[-1]))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(literal(title), fontsize=10)
    fig.tight_layout()
    return fig


def bound_against_gamma(gammas, lower, upper, *, reference: float | None = None, reference_label: str = "",
                        flip: float | None = None, ylabel: str = "value", title: str | None = None):
    """The bounds' band against Γ, a reference line (e.g. the logging policy's value) and the flip point."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    ax.fill_between(gammas, lower, upper, color="C0", alpha=0.25, lw=0)
    ax.plot(gammas, lower, color="C0")
    ax.plot(gammas, upper, color="C0")
    if reference is not None:
        ax.axhline(reference, color="0.4", ls=":", lw=1)
        ax.annotate(literal(reference_label), (gammas[0], reference), textcoords="offset points", xytext=(4, 4),
                    fontsize=8, color="0.3")
    if flip is not None and np.isfinite(flip):
        ax.axvline(flip, color="C3", ls="--", lw=1.2)
        ax.annotate(f"conclusion flips at Γ = {flip:.3g}", (flip, ax.get_ylim()[1]), textcoords="offset points",
                    xytext=(4, -14), fontsize=8, color="C3")
    ax.set_xlabel("Γ (propensities wrong by up to this factor in odds)")
    ax.set_ylabel(literal(ylabel))
    if title:
        ax.set_title(literal(title), fontsize=10)
    fig.tight_layout()
    return fig
