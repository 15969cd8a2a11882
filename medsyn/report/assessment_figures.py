"""Bars of the assessment report (paper 000 Figs. 5-6), drawn from a results document (schema 2,
``medsyn.report.results``).

One group of bars per multiplier (1x, 2x, 3x), one bar per (synthetic set, synthetic regime) with its 90% CI
as an error bar; the two baselines (Baseline Real, Geometric DA) are horizontal reference lines with their
CI as a shaded band. Regimes, multipliers and sets a run does not have are left out. The radar (paper 000
Fig. 7) is ``medsyn.report.radar``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from medsyn.report.figure_output import write_png
from medsyn.report.metric_catalog import BASELINE_REGIMES, REGIME_LABELS, SYNTHETIC_REGIMES
from medsyn.report.results import baseline_entry, multiplier_keys

__all__ = ["save_regime_bars"]


def save_regime_bars(
    path: str | os.PathLike, results: Mapping[str, Any], *, section: str, metric: str, title: str = ""
) -> Path:
    """Bars of ``results["synthetic_sets"][set][section][regime][multiplier][metric]`` (mean, ci90) as a PNG.

    section: "utility" or "robustness"; metric: e.g. "accuracy", "macro_f1", "adversarial_accuracy".
    """
    from matplotlib.figure import Figure

    sets = results.get("synthetic_sets") or {}
    if not sets:
        raise ValueError("results has no synthetic_sets to plot")
    if not any(section in entry for entry in sets.values()):
        raise ValueError(f"no synthetic set has a {section!r} section; expected 'utility' or 'robustness'")
    multipliers = multiplier_keys(results, section)
    bars = [(name, regime) for name, entry in sets.items() for regime in SYNTHETIC_REGIMES
            if regime in entry.get(section, {})]
    width = 0.8 / max(len(bars), 1)
    figure = Figure(figsize=(max(6.0, 1.6 * len(multipliers) + 0.4 * len(bars)), 4.2))
    axis = figure.subplots()
    for position, (name, regime) in enumerate(bars):
        xs, means, errors = [], [], [[], []]
        for index, key in enumerate(multipliers):
            entry = sets[name][section][regime].get(key, {}).get(metric)
            if entry is None:
                continue
            xs.append(index - 0.4 + width * (position + 0.5))
            means.append(entry["mean"])
            errors[0].append(entry["mean"] - entry["ci90"][0])
            errors[1].append(entry["ci90"][1] - entry["mean"])
        axis.bar(xs, means, width=width, yerr=errors, capsize=2, color=f"C{position % 10}",
                 label=f"{name}: {REGIME_LABELS[regime]}")
    for style, regime in zip(("--", ":"), BASELINE_REGIMES):
        baseline = baseline_entry(results, section, regime)
        if baseline is not None and metric in baseline:
            entry = baseline[metric]
            axis.axhline(entry["mean"], color="black", linestyle=style, label=f"{REGIME_LABELS[regime]} (baseline)")
            axis.axhspan(entry["ci90"][0], entry["ci90"][1], color="grey", alpha=0.15)
    axis.set_xticks(range(len(multipliers)))
    axis.set_xticklabels([f"{key} synthetic" for key in multipliers])
    axis.set_ylabel(f"{metric.replace('_', ' ')} (mean, 90% CI over seeds)")
    axis.set_ylim(0, 1.05)
    axis.set_title(title or f"{section}: {metric}")
    axis.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return write_png(path, figure)
