"""The figures of a comparison over data sets (paper 000 Figs. 5-7), from schema-2 results documents.

- Fig. 7: the radar of ``report/compare_radar.py`` (min-max over models x data sets), drawn by
  ``report/radar.save_radar``.
- Figs. 5 and 6: one row of panels per data set, one panel per synthetic regime (Data Anonymization,
  Synthetic DA, Combined DA); in a panel one group of bars per multiplier (1x, 2x, 3x: synthetic images per
  real training image) and one bar per model with its 90% CI over seeds; the data set's two baselines
  (Baseline Real, Geometric DA) are horizontal lines with their CI as a shaded band. Fig. 5 is utility
  (accuracy), Fig. 6 robustness (DeepFool adversarial accuracy). A model keeps its colour in every panel.

``regime_bar_notes`` says, before anything is drawn, which data sets a bar figure leaves out and why.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from medsyn.report.compare_radar import PooledRadar
from medsyn.report.figure_output import write_png
from medsyn.report.metric_catalog import BASELINE_REGIMES, REGIME_LABELS, SYNTHETIC_REGIMES
from medsyn.report.radar import save_radar
from medsyn.report.results import baseline_entry, multiplier_keys

__all__ = ["bar_datasets", "regime_bar_notes", "save_pooled_radar", "save_regime_bars_over_datasets"]


def save_pooled_radar(path: str | os.PathLike, radar: PooledRadar, *, extractor: str) -> Path:
    """Fig. 7: each model's scores (mean over the data sets of its min-max normalised cells) as a PNG."""
    if radar.normalisation is None:
        raise ValueError("this comparison has no radar to draw: " + "; ".join(radar.notes))
    n_sets = len(radar.values)
    title = (f"min-max over {len(radar.models)} models x {n_sets} data sets, mean over the data sets;\n"
             f"outward is better (fidelity/diversity on {extractor})")
    return save_radar(path, {}, extractor=extractor, title=title, scores=radar.normalisation.scores)


def _has_metric(entry: Mapping[str, Any], section: str, regime: str, metric: str) -> bool:
    return any(metric in cell for cell in entry.get(section, {}).get(regime, {}).values())


def bar_datasets(datasets: Mapping[str, Mapping[str, Any]], *, section: str, metric: str) -> list[str]:
    """The labels of the data sets where some set has ``section.<synthetic regime>.<n>x.<metric>``."""
    return [label for label, results in datasets.items()
            if any(_has_metric(entry, section, regime, metric)
                   for entry in results["synthetic_sets"].values() for regime in SYNTHETIC_REGIMES)]


def regime_bar_notes(datasets: Mapping[str, Mapping[str, Any]], *, section: str, metric: str,
                     figure: str) -> list[str]:
    """What the bar figure of ``section`` / ``metric`` leaves out: data sets without it, or the whole figure."""
    shown = bar_datasets(datasets, section=section, metric=metric)
    if not shown:
        return [f"no {figure}: no data set has {section}.<synthetic regime>.<n>x.{metric} (regimes "
                f"{', '.join(SYNTHETIC_REGIMES)})"]
    return [f"{figure} leaves out data set {label!r}: no synthetic set there has "
            f"{section}.<synthetic regime>.<n>x.{metric}" for label in datasets if label not in shown]


def _panel(axis: Any, results: Mapping[str, Any], *, section: str, regime: str, metric: str,
           colours: Mapping[str, str]) -> None:
    sets = {name: entry for name, entry in results["synthetic_sets"].items()
            if _has_metric(entry, section, regime, metric)}
    multipliers = multiplier_keys(results, section)
    width = 0.8 / max(len(sets), 1)
    for position, (name, entry) in enumerate(sets.items()):
        xs, means, errors = [], [], [[], []]
        for index, key in enumerate(multipliers):
            statistic = entry[section][regime].get(key, {}).get(metric)
            if statistic is None:
                continue
            xs.append(index - 0.4 + width * (position + 0.5))
            means.append(statistic["mean"])
            errors[0].append(statistic["mean"] - statistic["ci90"][0])
            errors[1].append(statistic["ci90"][1] - statistic["mean"])
        axis.bar(xs, means, width=width, yerr=errors, capsize=2, color=colours[name], label=name)
    for style, baseline in zip(("--", ":"), BASELINE_REGIMES):
        entry = baseline_entry(results, section, baseline)
        if entry is not None and metric in entry:
            statistic = entry[metric]
            axis.axhline(statistic["mean"], color="black", linestyle=style, label=REGIME_LABELS[baseline])
            axis.axhspan(statistic["ci90"][0], statistic["ci90"][1], color="grey", alpha=0.15)
    axis.set_xticks(range(len(multipliers)))
    axis.set_xticklabels(multipliers)
    axis.set_ylim(0, 1.05)


def save_regime_bars_over_datasets(path: str | os.PathLike, datasets: Mapping[str, Mapping[str, Any]], *,
                                   section: str, metric: str, title: str) -> Path:
    """Fig. 5 (``section="utility", metric="accuracy"``) or Fig. 6 (``"robustness", "adversarial_accuracy"``)
    over the data sets that have it (:func:`bar_datasets`), as a PNG at ``path``; ValueError when none has."""
    from matplotlib.figure import Figure

    labels = bar_datasets(datasets, section=section, metric=metric)
    if not labels:
        raise ValueError(regime_bar_notes(datasets, section=section, metric=metric, figure="figure")[0])
    regimes = [regime for regime in SYNTHETIC_REGIMES
               if any(_has_metric(entry, section, regime, metric)
                      for label in labels for entry in datasets[label]["synthetic_sets"].values())]
    models: list[str] = []
    for label in labels:
        models += [name for name in datasets[label]["synthetic_sets"] if name not in models]
    colours = {name: f"C{index % 10}" for index, name in enumerate(models)}
    figure = Figure(figsize=(3.6 * len(regimes) + 1.6, 2.9 * len(labels) + 0.6))
    grid = figure.subplots(len(labels), len(regimes), squeeze=False, sharey=True)
    for row, label in enumerate(labels):
        for column, regime in enumerate(regimes):
            axis = grid[row][column]
            _panel(axis, datasets[label], section=section, regime=regime, metric=metric, colours=colours)
            axis.set_title(f"{label}: {REGIME_LABELS[regime]}", fontsize=9)
            if column == 0:
                axis.set_ylabel(f"{metric.replace('_', ' ')}\n(mean, 90% CI)", fontsize=8)
            if row == len(labels) - 1:
                axis.set_xlabel("synthetic images per real training image", fontsize=8)
    handles: dict[str, Any] = {}
    for axis in grid.flat:
        for handle, name in zip(*axis.get_legend_handles_labels()):
            handles.setdefault(name, handle)
    figure.legend(list(handles.values()), list(handles), loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    figure.suptitle(title)
    figure.tight_layout()
    return write_png(path, figure)
