"""Trust diagnostics for judge-based estimates: when a calibrated number should not be believed.

Each check reads the diagnostics that `core.surrogate` put on an estimate and
returns plain sentences that name the group. They follow the gates of Causal
Judge Evaluation (Landesberg 2025): judge scores outside the range the
calibration has seen, a calibration borrowed from other groups, and a
calibration that the group's own labels contradict (transport failure).
"""

from __future__ import annotations

from typing import Sequence

from ..core.estimate import Estimate

RANGE_ALARM = 0.05  # share of a group's judge scores outside the labelled range
FEW_LABELS = 20  # below this many labels a group's normal-approximation interval is rough


def calibration_warnings(est: Estimate, calibration_groups: Sequence[str] | None = None) -> list[str]:
    """Warnings for one `calibrated` estimate: range, borrowed calibration, transport."""
    d = est.diagnostics
    name = est.name
    out = []
    share = d.get("share_outside_labeled_range", 0.0)
    if share >= RANGE_ALARM:
        lo, hi = d.get("labeled_score_range", (float("nan"), float("nan")))
        out.append(f"group {name!r}: {share:.0%} of its judge scores lie outside the range seen in the labelled "
                   f"rows [{lo:g}, {hi:g}]; the calibration is extrapolated flat there")
    if d.get("borrowed_calibration"):
        src = ""
        if calibration_groups:
            shown = ", ".join(repr(g) for g in list(calibration_groups)[:5])
            more = ", ..." if len(calibration_groups) > 5 else ""
            src = f" ({shown}{more})"
        out.append(f"group {name!r} has no labels of its own: its estimate rests entirely on a calibration learnt on "
                   f"other groups{src}, and is right only if the judge means the same thing there; label a few of "
                   "its rows to check")
    if "mean_residual" in d and d.get("n_labeled", 0) >= 2:
        lo, hi = d.get("mean_residual_ci", (0.0, 0.0))
        if lo > 0 or hi < 0:
            out.append(f"group {name!r}: the judge calibration does not transport: its {d['n_labeled']} labels sit "
                       f"{d['mean_residual']:+.3f} (CI [{lo:+.3f}, {hi:+.3f}]) away from the calibrated judge "
                       "scores; the estimate is corrected with those labels, but a calibration-only number for "
                       "this group would be wrong")
    out.extend(label_count_warnings(est))
    return out


def label_count_warnings(est: Estimate) -> list[str]:
    """A warning when a group's estimate rests on very few labels of its own."""
    n_lab = est.diagnostics.get("n_labeled")
    if n_lab is not None and 0 < n_lab < FEW_LABELS:
        return [f"group {est.name!r} ({est.method}): only {n_lab} labelled rows; its interval relies on a normal "
                "approximation that is rough with so few labels"]
    return []


def rogan_gladen_warnings(est: Estimate) -> list[str]:
    """Warnings for a Rogan–Gladen estimate: weak judge, clipped estimate."""
    d = est.diagnostics
    out = []
    if d.get("youden_j", 1.0) < 0.3:
        out.append(f"group {est.name!r} (rg): the judge's sensitivity + specificity - 1 is only "
                   f"{d['youden_j']:.2f}; the correction divides by it, so the estimate is unstable")
    if d.get("clipped"):
        out.append(f"group {est.name!r} (rg): the corrected prevalence {d['unclipped_estimate']:.3f} fell outside "
                   "[0, 1] and was clipped")
    return out
