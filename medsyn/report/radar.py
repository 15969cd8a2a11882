"""Radar plot of the six trilemma axes (paper 000 Fig. 7).

Each axis is min-max normalised across the models shown (paper 000 §5: "normalized each metric by
taking the maximum and minimum" over all DGM x data-set values); privacy (max-SSIM, lower is better) is
inverted so that outward is better on every axis.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from medsyn.io.atomic import write_bytes_atomic
from medsyn.report.metric_catalog import RADAR_AXES, describe_metric

__all__ = ["radar_scores", "save_radar"]


def _find(entries: Mapping[str, Any], prefix: str) -> float:
    for metric, entry in entries.items():
        if metric == prefix or metric.startswith(prefix + "_"):
            return float(entry["value"])
    raise ValueError(f"no metric starting with {prefix!r} among {sorted(entries)}")


def radar_scores(results: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """model -> axis -> score in [0, 1], 1 = best among the models on that axis.

    When every model has the same value on an axis there is nothing to rank: all get 1.0.
    """
    models = results["models"]
    raw = {model: {axis: _find(entries, prefix) for axis, prefix in RADAR_AXES.items()} for model, entries in models.items()}
    scores: dict[str, dict[str, float]] = {model: {} for model in models}
    for axis, prefix in RADAR_AXES.items():
        values = [raw[model][axis] for model in models]
        low, high = min(values), max(values)
        higher_is_better = describe_metric(prefix).higher_is_better
        for model in models:
            if high == low:
                score = 1.0
            else:
                score = (raw[model][axis] - low) / (high - low)
                if not higher_is_better:
                    score = 1.0 - score
            scores[model][axis] = score
    return scores


def save_radar(path: str | os.PathLike, scores: Mapping[str, Mapping[str, float]], title: str = "") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    axes_names = list(RADAR_AXES)
    angles = [2 * math.pi * i / len(axes_names) for i in range(len(axes_names))]
    figure = plt.figure(figsize=(6, 6))
    ax = figure.add_subplot(111, polar=True)
    for model, model_scores in scores.items():
        values = [model_scores[a] for a in axes_names]
        ax.plot(angles + angles[:1], values + values[:1], linewidth=2, label=model)
        ax.fill(angles + angles[:1], values + values[:1], alpha=0.15)
    ax.set_xticks(angles)
    ax.set_xticklabels([a if a != "privacy" else "privacy (inverted)" for a in axes_names])
    ax.set_ylim(0, 1.05)
    ax.set_yticks([0.25, 0.5, 0.75, 1.0])
    ax.set_title(title or "min-max normalised across models; outward is better")
    ax.legend(loc="upper right", bbox_to_anchor=(1.3, 1.1))
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return write_bytes_atomic(Path(path), buffer.getvalue())
