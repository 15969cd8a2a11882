"""The DP-sweep figure (paper 001 Fig. 2): every per-sigma metric against the DP-SGD noise sigma, drawn from
a results document of workflow ``dp_sweep`` (rows: ``dp_sweep_tables.dp_sweep_series``).

One panel per metric (four per row; a metric no set has, e.g. LPIPS without VGG16 weights, has no panel and
dp_sweep.md says why): the mean over seeds as a line with markers and the 90% confidence interval as a
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

_PANELS_PER_ROW = 4

# (panel key, axis label, (series key, legend) per line) in panel order; a panel only when some set has it
DP_SWEEP_PANELS: tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...] = (
    ("fid", "FID vs holdout (lower is better)", (("fid", "mean over seeds"),)),
    ("inception_score", "IS, Baseline Real classifier (higher is better)", (("inception_score", "mean over seeds"),)),
    ("lpips", "LPIPS vs holdout, unpaired set", (("lpips", "mean over seeds"),)),
    ("psnr", "PSNR (dB) vs holdout, unpaired set", (("psnr", "mean over seeds"),)),
    ("ssim", "SSIM vs holdout, unpaired set", (("ssim", "mean over seeds"),)),
    ("dp_epsilon", "DP epsilon (lower is more private)", (("dp_epsilon", "mean over seeds"),)),
    ("empirical_epsilon", "empirical epsilon, worst query, paper 001 §3.2 (lower is more private)",
     tuple((key, header.replace("empirical ε worst, ", "")) for key, _metric, header in EMPIRICAL_SERIES)),
    ("dcr_ks", "DCR KS statistic, pixel space (lower is more private)", (("dcr_ks", "mean over seeds"),)),
    ("dcr_area_normalised", "DCR area between ECDFs / pooled range (lower is more private)",
     (("dcr_area_normalised", "mean over seeds"),)),
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
              if key == "dp_epsilon" or any(row[name] is not None for row in rows for name, _legend in series)]
    columns = min(_PANELS_PER_ROW, len(panels))
    rows_of_panels = -(-len(panels) // columns)
    figure = Figure(figsize=(4.2 * columns, 3.6 * rows_of_panels))
    grid = figure.subplots(rows_of_panels, columns, squeeze=False)
    axes = [axis for row_of_axes in grid for axis in row_of_axes]
    for axis in axes[len(panels):]:
        axis.set_visible(False)
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
