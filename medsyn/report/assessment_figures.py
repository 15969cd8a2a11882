"""Figures of the assessment report, drawn from the aggregated ``results.json`` tree (mean and 90% CI per metric).

- ``save_regime_bars``: paper 000 Figs. 5-6. One group of bars per multiplier (1x, 2x, 3x), one bar per
  (synthetic set, synthetic regime) with its 90% CI as an error bar; the two baselines (Baseline Real,
  Geometric DA) are horizontal reference lines with their CI as a shaded band.
- ``assessment_radar_scores`` / ``save_assessment_radar``: paper 000 Fig. 7. Per synthetic set, the mean of
  each axis is min-max normalised over the sets shown (the paper normalises over models x data sets), and
  privacy (max-SSIM, lower = more private) is inverted so that outward is better on every axis. Sampling
  speed is an axis when every set has it (an external folder of images has none: then five axes).
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from medsyn.io.atomic import write_bytes_atomic

__all__ = ["RADAR_DEFINITIONS", "assessment_radar_scores", "save_assessment_radar", "save_regime_bars"]

_SYNTHETIC_REGIMES = ("data_anonymization", "synthetic_da", "combined_da")
_BASELINES = ("baseline_real", "geometric_da")
_LABELS = {
    "baseline_real": "Baseline Real",
    "geometric_da": "Geometric DA",
    "data_anonymization": "Data Anonymization",
    "synthetic_da": "Synthetic DA",
    "combined_da": "Combined DA",
}

# axis -> (how it is read from one synthetic set's aggregated results, higher is better)
RADAR_DEFINITIONS = {
    "fidelity": ("precision on the radar extractor", True),
    "diversity": ("recall on the radar extractor", True),
    "utility": ("accuracy averaged over the synthetic regimes and multipliers", True),
    "robustness": ("adversarial accuracy averaged over the synthetic regimes and multipliers", True),
    "privacy": ("ssim_max_paper (inverted: lower max-SSIM is more private)", False),
    "sampling speed": ("samples per second of the generator (only when every set has a generator)", True),
}


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return buffer.getvalue()


def _multipliers(set_results: Mapping[str, Any], section: str) -> list[str]:
    keys = set()
    for regime in _SYNTHETIC_REGIMES:
        keys |= set(set_results[section].get(regime, {}))
    return sorted(keys, key=lambda key: int(key.rstrip("x")))


def save_regime_bars(
    path: str | os.PathLike, results: Mapping[str, Any], *, section: str, metric: str, title: str = ""
) -> Path:
    """Bars of ``results["synthetic_sets"][set][section][regime][multiplier][metric]`` (mean, ci90).

    section: "utility" or "robustness"; metric: e.g. "accuracy", "macro_f1", "adversarial_accuracy".
    """
    from matplotlib.figure import Figure

    sets = results.get("synthetic_sets") or {}
    if not sets:
        raise ValueError("results has no synthetic_sets to plot")
    first = next(iter(sets.values()))
    if section not in first:
        raise ValueError(f"results has no section {section!r}; expected 'utility' or 'robustness'")
    multipliers = _multipliers(first, section)
    bars = [(name, regime) for name in sets for regime in _SYNTHETIC_REGIMES if regime in sets[name][section]]
    width = 0.8 / max(len(bars), 1)
    figure = Figure(figsize=(max(6.0, 1.6 * len(multipliers) + 0.4 * len(bars)), 4.2))
    axis = figure.subplots()
    colours = [f"C{i}" for i in range(10)]
    for position, (name, regime) in enumerate(bars):
        means, errors = [], [[], []]
        for key in multipliers:
            entry = sets[name][section][regime][key][metric]
            means.append(entry["mean"])
            errors[0].append(entry["mean"] - entry["ci90"][0])
            errors[1].append(entry["ci90"][1] - entry["mean"])
        xs = [i - 0.4 + width * (position + 0.5) for i in range(len(multipliers))]
        axis.bar(xs, means, width=width, yerr=errors, capsize=2, color=colours[position % 10],
                 label=f"{name}: {_LABELS[regime]}")
    for style, regime in zip(("--", ":"), _BASELINES):
        if regime in first[section]:
            entry = next(iter(first[section][regime].values()))[metric]
            axis.axhline(entry["mean"], color="black", linestyle=style, label=f"{_LABELS[regime]} (baseline)")
            axis.axhspan(entry["ci90"][0], entry["ci90"][1], color="grey", alpha=0.15)
    axis.set_xticks(range(len(multipliers)))
    axis.set_xticklabels([f"{key} synthetic" for key in multipliers])
    axis.set_ylabel(f"{metric.replace('_', ' ')} (mean, 90% CI over seeds)")
    axis.set_ylim(0, 1.05)
    axis.set_title(title or f"{section}: {metric}")
    axis.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return write_bytes_atomic(Path(path), _png(figure))


def _mean_over_regimes(section: Mapping[str, Any], metric: str) -> float:
    values = [entry[metric]["mean"] for regime in _SYNTHETIC_REGIMES for entry in section.get(regime, {}).values()]
    if not values:
        raise ValueError(f"no synthetic regime results for {metric!r}")
    return sum(values) / len(values)


def _raw_axes(set_results: Mapping[str, Any], extractor: str) -> dict[str, float]:
    manifold = set_results["fidelity"][extractor]
    return {
        "fidelity": manifold["precision"]["mean"],
        "diversity": manifold["recall"]["mean"],
        "utility": _mean_over_regimes(set_results["utility"], "accuracy"),
        "robustness": _mean_over_regimes(set_results["robustness"], "adversarial_accuracy"),
        "privacy": set_results["privacy"]["ssim_max_paper"]["mean"],
        **({"sampling speed": set_results["sampling_speed"]["mean"]} if "sampling_speed" in set_results else {}),
    }


def assessment_radar_scores(results: Mapping[str, Any], *, extractor: str) -> dict[str, dict[str, float]]:
    """synthetic set -> axis -> score in [0, 1] (1 = best among the sets; all 1.0 when the sets tie)."""
    sets = results.get("synthetic_sets") or {}
    if not sets:
        raise ValueError("results has no synthetic_sets for the radar")
    raw = {name: _raw_axes(entry, extractor) for name, entry in sets.items()}
    scores: dict[str, dict[str, float]] = {name: {} for name in sets}
    axes = [axis for axis in RADAR_DEFINITIONS if all(axis in raw[name] for name in sets)]
    for axis_name in axes:
        higher_is_better = RADAR_DEFINITIONS[axis_name][1]
        values = [raw[name][axis_name] for name in sets]
        low, high = min(values), max(values)
        for name in sets:
            if high == low:
                score = 1.0
            else:
                score = (raw[name][axis_name] - low) / (high - low)
                score = score if higher_is_better else 1.0 - score
            scores[name][axis_name] = score
    return scores


def save_assessment_radar(path: str | os.PathLike, results: Mapping[str, Any], *, extractor: str) -> Path:
    """The radar of :func:`assessment_radar_scores` as a PNG."""
    from matplotlib.figure import Figure

    scores = assessment_radar_scores(results, extractor=extractor)
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
    axis.set_title(f"min-max normalised over synthetic sets; outward is better\n(fidelity/diversity on {extractor})")
    axis.legend(loc="upper right", bbox_to_anchor=(1.3, 1.1))
    return write_bytes_atomic(Path(path), _png(figure))
