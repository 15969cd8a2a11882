"""The radar of the trilemma axes over the synthetic sets of one results document (paper 000 Fig. 7).

Each axis (``metric_catalog.RADAR_AXES``: how it is read and which direction is better) is min-max
normalised over the sets shown (paper 000 §5 normalises "by taking the maximum and minimum" over all DGM x
data-set values); a lower-is-better axis (privacy: max-SSIM) is inverted so that outward is better on every
axis. When every set has the same value there is nothing to rank: all get 1.0. An axis some set lacks
(sampling speed of a folder of external images, robustness of a run without it) is left out.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from medsyn.report.metric_catalog import RADAR_AXES

__all__ = ["radar_scores", "save_radar"]


def radar_scores(results: Mapping[str, Any], *, extractor: str) -> dict[str, dict[str, float]]:
    """synthetic set -> axis -> score in [0, 1] (1 = best among the sets), axes in ``RADAR_AXES`` order.

    extractor: the feature extractor whose precision and recall are the fidelity and diversity axes.
    """
    sets = results.get("synthetic_sets") or {}
    if not sets:
        raise ValueError("results has no synthetic_sets for the radar")
    raw = {name: {axis: definition.read(entry, extractor) for axis, definition in RADAR_AXES.items()}
           for name, entry in sets.items()}
    axes = [axis for axis in RADAR_AXES if all(raw[name][axis] is not None for name in sets)]
    if not axes:
        raise ValueError(f"no radar axis is present in every synthetic set (extractor {extractor!r}; "
                         f"axes: {list(RADAR_AXES)})")
    scores: dict[str, dict[str, float]] = {name: {} for name in sets}
    for axis in axes:
        values = [raw[name][axis] for name in sets]
        low, high = min(values), max(values)
        for name in sets:
            if high == low:
                score = 1.0
            else:
                score = (raw[name][axis] - low) / (high - low)
                score = score if RADAR_AXES[axis].higher_is_better else 1.0 - score
            scores[name][axis] = score
    return scores


def save_radar(path: str | os.PathLike, results: Mapping[str, Any], *, extractor: str,
               title: str | None = None, scores: Mapping[str, Mapping[str, float]] | None = None) -> Path:
    """The radar of :func:`radar_scores` as a PNG at ``path``, written atomically; returns the path.

    scores: set -> axis -> score in [0, 1] to draw instead of ``radar_scores(results)`` (scores normalised
    over several runs, ``report/compare_radar.py``); ``results`` is then not read."""
    from matplotlib.figure import Figure

    from medsyn.report.figure_output import write_png

    scores = radar_scores(results, extractor=extractor) if scores is None else scores
    names = list(next(iter(scores.values())))
    angles = [2 * math.pi * i / len(names) for i in range(len(names))]
    figure = Figure(figsize=(5.5, 5.5))
    axis = figure.add_subplot(111, polar=True)
    for set_name, set_scores in scores.items():
        values = [set_scores[a] for a in names]
        axis.plot(angles + angles[:1], values + values[:1], linewidth=2, label=set_name)
        axis.fill(angles + angles[:1], values + values[:1], alpha=0.15)
    axis.set_xticks(angles)
    axis.set_xticklabels([a if a != "privacy" else "privacy (inverted)" for a in names])
    axis.set_ylim(0, 1.05)
    axis.set_yticks([0.25, 0.5, 0.75, 1.0])
    axis.set_title(title or "min-max normalised over synthetic sets; outward is better\n"
                            f"(fidelity/diversity on {extractor})")
    axis.legend(loc="upper right", bbox_to_anchor=(1.3, 1.1))
    return write_png(path, figure)
