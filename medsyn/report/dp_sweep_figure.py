"""The DP-sweep figure (paper 001 Fig. 10): FID, epsilon and utility against the DP-SGD noise sigma.

One panel per metric: the mean over seeds as a line with markers and the 90% confidence interval as a
shaded band; the epsilon axis is logarithmic (epsilon spans orders of magnitude over the paper's sigmas). A sigma whose epsilon is unbounded (sigma = 0: plain SGD, no privacy) has no point on the
epsilon panel; the panel says "sigma=0: no privacy (epsilon = inf)" instead.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from medsyn.io.atomic import write_bytes_atomic

__all__ = ["DP_SWEEP_PANELS", "REQUIRED_PANELS", "save_dp_sweep_figure"]

# (results key, axis label, direction) in panel order; the first three are required
DP_SWEEP_PANELS: tuple[tuple[str, str, str], ...] = (
    ("fid", "FID (lower is better)", "lower"),
    ("epsilon", "DP epsilon (lower is more private)", "lower"),
    ("empirical_epsilon", "empirical epsilon, paper 001 §3.2 (lower is more private)", "lower"),
    ("utility", "utility: test accuracy, synthetic-only (higher is better)", "higher"),
)
REQUIRED_PANELS = ("fid", "epsilon", "utility")


def save_dp_sweep_figure(
    path: str | os.PathLike,
    sigmas: Sequence[float],
    metrics: Mapping[str, Sequence[Mapping[str, Any] | None]],
    *,
    title: str = "",
) -> Path:
    """Write the three-panel PNG to ``path`` atomically; return the path.

    sigmas: the noise multipliers, ascending, length S.
    metrics: "fid", "epsilon", "utility" (and optionally "empirical_epsilon") -> S entries, each
        {"mean": float, "ci90": [low, high], ...} or None where the metric is undefined (epsilon at sigma = 0).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sigma_list = [float(sigma) for sigma in sigmas]
    missing = [key for key in REQUIRED_PANELS if key not in metrics]
    if missing:
        raise ValueError(f"metrics has no {missing} entries; expected keys {list(REQUIRED_PANELS)}")
    panels = [panel for panel in DP_SWEEP_PANELS if panel[0] in metrics]
    for key, _label, _direction in panels:
        if len(metrics[key]) != len(sigma_list):
            raise ValueError(f"metrics[{key!r}] has {len(metrics[key])} entries for {len(sigma_list)} sigmas")

    figure, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6))
    for axis, (key, label, _direction) in zip(axes, panels):
        points = [(s, entry) for s, entry in zip(sigma_list, metrics[key]) if entry is not None]
        if points:
            xs = [s for s, _ in points]
            means = [entry["mean"] for _, entry in points]
            lows = [entry["ci90"][0] for _, entry in points]
            highs = [entry["ci90"][1] for _, entry in points]
            axis.fill_between(xs, lows, highs, alpha=0.25, label="90% CI")
            axis.plot(xs, means, marker="o", label="mean over seeds")
        undefined = [s for s, entry in zip(sigma_list, metrics[key]) if entry is None]
        if undefined:
            names = ", ".join(f"{s:g}" for s in undefined)
            axis.text(
                0.03,
                0.97,
                f"sigma={names}: no privacy\n(epsilon = inf)",
                transform=axis.transAxes,
                va="top",
                fontsize=8,
            )
        if key == "epsilon" and points and min(lows) > 0:
            axis.set_yscale("log")  # epsilon spans orders of magnitude across the paper's sigmas
        axis.set_xlabel("DP-SGD noise multiplier sigma")
        axis.set_ylabel(label, fontsize=8)
        axis.set_xticks(sigma_list)
        axis.grid(alpha=0.3)
        if points:
            axis.legend(fontsize=7, loc="best")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return write_bytes_atomic(Path(path), buffer.getvalue())
