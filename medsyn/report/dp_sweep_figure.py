"""The DP-sweep figure (paper 001 Fig. 10): FID, epsilon and utility against the DP-SGD noise sigma, drawn
from a results document of workflow ``dp_sweep`` (rows: ``dp_sweep_tables.dp_sweep_series``).

One panel per metric: the mean over seeds as a line with markers and the 90% confidence interval as a
shaded band; the epsilon axis is logarithmic (epsilon spans orders of magnitude over the paper's sigmas). A
sigma whose epsilon is unbounded (sigma = 0: plain SGD, no privacy) has no point on the epsilon panel; the
panel says "sigma=0: no privacy (epsilon = inf)" instead. The empirical-epsilon panel (worst query, both
conventions: paper code ln(r_a/r_v) and with the dimension factor d) appears when some set has it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from medsyn.report.dp_sweep_tables import EMPIRICAL_SERIES, dp_sweep_series
from medsyn.report.figure_output import write_png

__all__ = ["DP_SWEEP_PANELS", "save_dp_sweep_figure"]

# (panel key, axis label, (series key, legend) per line) in panel order; the empirical panel only when measured
DP_SWEEP_PANELS: tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...] = (
    ("fid", "FID (lower is better)", (("fid", "mean over seeds"),)),
    ("dp_epsilon", "DP epsilon (lower is more private)", (("dp_epsilon", "mean over seeds"),)),
    ("empirical_epsilon", "empirical epsilon, worst query, paper 001 §3.2 (lower is more private)",
     tuple((key, header.replace("empirical ε worst, ", "")) for key, _metric, header in EMPIRICAL_SERIES)),
    ("utility", "utility: test accuracy, synthetic-only (higher is better)", (("utility", "mean over seeds"),)),
)


def save_dp_sweep_figure(path: str | os.PathLike, results: Mapping[str, Any], *, extractor: str,
                         title: str = "") -> Path:
    """Write the panels as a PNG to ``path`` atomically; return the path.

    results: a schema-2 document of workflow ``dp_sweep``; extractor: the one whose FID is drawn.
    """
    from matplotlib.figure import Figure

    rows = dp_sweep_series(results, extractor=extractor)
    sigmas = [row["sigma"] for row in rows]
    panels = [(key, label, series) for key, label, series in DP_SWEEP_PANELS
              if key != "empirical_epsilon" or any(row[name] is not None for row in rows for name, _legend in series)]
    figure = Figure(figsize=(4.2 * len(panels), 3.6))
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    for axis, (key, label, series) in zip(axes, panels):
        drawn = False
        for name, legend in series:
            points = [(row["sigma"], row[name]) for row in rows if row[name] is not None]
            if not points:
                continue
            xs = [s for s, _ in points]
            means = [entry["mean"] for _, entry in points]
            lows = [entry["ci90"][0] for _, entry in points]
            highs = [entry["ci90"][1] for _, entry in points]
            suffix = "" if len(series) == 1 else f" ({legend})"
            axis.fill_between(xs, lows, highs, alpha=0.25, label="90% CI" + suffix)
            axis.plot(xs, means, marker="o", label=legend if len(series) > 1 else "mean over seeds")
            drawn = True
        unbounded = [row["sigma"] for row in rows if row["no_privacy"]] if key == "dp_epsilon" else []
        if unbounded:
            names = ", ".join(f"{s:g}" for s in unbounded)
            axis.text(0.03, 0.97, f"sigma={names}: no privacy\n(epsilon = inf)", transform=axis.transAxes,
                      va="top", fontsize=8)
        if key == "empirical_epsilon":
            axis.axhline(0.0, color="0.5", linewidth=0.8)  # signed: below 0 the victim is less likely at the query
        if key == "dp_epsilon" and drawn and min(lows) > 0:
            axis.set_yscale("log")  # epsilon spans orders of magnitude across the paper's sigmas
        axis.set_xlabel("DP-SGD noise multiplier sigma")
        axis.set_ylabel(label, fontsize=8)
        axis.set_xticks(sigmas)
        axis.grid(alpha=0.3)
        if drawn:
            axis.legend(fontsize=7, loc="best")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return write_png(path, figure, dpi=110)
