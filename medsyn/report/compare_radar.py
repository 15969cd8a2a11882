"""The radar of paper 000 Fig. 7 over several data sets: each model's six trilemma axes, min-max normalised over
every model x data set value together, not within one run.

Paper 000 §5.4: "we first computed the mean of each metric for each individual DGM across the four datasets.
Then, we normalized each metric by taking the maximum and minimum among the 12 values for each metric (3 DGMs,
4 datasets)". For one axis with values v[m, d] (model m, data set d, each the mean over seeds read by
``metric_catalog.RADAR_AXES``):

    low, high = min and max of v over every (m, d);  cell[m, d] = (v[m, d] - low) / (high - low)
    score[m] = mean over d of cell[m, d]   (= the normalised mean over d: the map is affine)

A lower-is-better axis (privacy: max-SSIM) is inverted, ``1 - cell``, so outward is better on every axis; when
every value of an axis is the same there is nothing to rank and every cell is 1.0 (as ``report/radar.py``).

A model is a synthetic-set name; the radar shows the models present in every data set (a mean over fewer data
sets would not be comparable) and the axes every one of those model x data-set cells has. What it leaves out is
said in ``PooledRadar.notes``, naming the data set, the set and the metric; ``report/radar.py`` draws it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from medsyn.report.metric_catalog import RADAR_AXES

__all__ = ["MIN_RADAR_AXES", "PooledNormalisation", "PooledRadar", "normalise_pooled", "pooled_radar", "radar_values"]

MIN_RADAR_AXES = 3  # fewer axes do not make a polygon

Values = dict[str, dict[str, dict[str, float | None]]]  # data set -> set -> axis -> mean (None: absent)


@dataclass(frozen=True)
class PooledNormalisation:
    bounds: dict[str, tuple[float, float]]  # axis -> (low, high) over every model x data set
    cells: dict[str, dict[str, dict[str, float]]]  # data set -> model -> axis -> normalised value in [0, 1]
    scores: dict[str, dict[str, float]]  # model -> axis -> mean over the data sets of its cells


@dataclass(frozen=True)
class PooledRadar:
    values: Values  # every set of every data set, every axis
    models: list[str]  # the models drawn (in every data set), in order of first appearance
    axes: list[str]  # the axes drawn, in RADAR_AXES order; empty when there is no radar
    normalisation: PooledNormalisation | None  # None when there is no radar
    notes: list[str] = field(default_factory=list)  # what the radar leaves out and why

    @property
    def drawn(self) -> bool:
        return self.normalisation is not None


def radar_values(datasets: Mapping[str, Mapping[str, Any]], *, extractor: str) -> Values:
    """data set label -> synthetic set -> radar axis -> mean (None where the set lacks it).

    datasets: label -> a schema-2 results document; extractor: whose precision / recall are fidelity / diversity.
    """
    return {label: {name: {axis: definition.read(entry, extractor) for axis, definition in RADAR_AXES.items()}
                    for name, entry in results["synthetic_sets"].items()}
            for label, results in datasets.items()}


def normalise_pooled(values: Values, models: Sequence[str], axes: Sequence[str]) -> PooledNormalisation:
    """Min-max over every model x data set value of each axis (module doc); every (data set, model, axis) of
    ``models`` x ``axes`` must be in ``values`` and not None (ValueError naming the first that is not)."""
    if not values or not models or not axes:
        raise ValueError("normalise_pooled needs at least one data set, one model and one axis, got "
                         f"{len(values)} data sets, models {list(models)}, axes {list(axes)}")
    unknown = [axis for axis in axes if axis not in RADAR_AXES]
    if unknown:
        raise ValueError(f"unknown radar axes {unknown}; expected some of {list(RADAR_AXES)}")
    for label, sets in values.items():
        for model in models:
            for axis in axes:
                if sets.get(model, {}).get(axis) is None:
                    raise ValueError(f"{label}/{model}: no value on the {axis} axis to normalise")
    bounds: dict[str, tuple[float, float]] = {}
    cells: dict[str, dict[str, dict[str, float]]] = {label: {model: {} for model in models} for label in values}
    for axis in axes:
        pooled = [float(values[label][model][axis]) for label in values for model in models]  # type: ignore[arg-type]
        low, high = min(pooled), max(pooled)
        bounds[axis] = (low, high)
        for label in values:
            for model in models:
                if high == low:
                    cell = 1.0
                else:
                    cell = (float(values[label][model][axis]) - low) / (high - low)  # type: ignore[arg-type]
                    cell = cell if RADAR_AXES[axis].higher_is_better else 1.0 - cell
                cells[label][model][axis] = cell
    scores = {model: {axis: sum(cells[label][model][axis] for label in values) / len(values) for axis in axes}
              for model in models}
    return PooledNormalisation(bounds=bounds, cells=cells, scores=scores)


def _missing_cells(values: Values, models: Sequence[str], axis: str) -> list[str]:
    return [f"{label}/{model}" for label, sets in values.items() for model in models if sets[model][axis] is None]


def _extractor_hint(datasets: Mapping[str, Mapping[str, Any]], extractor: str) -> str:
    found = sorted({name for results in datasets.values() for entry in results["synthetic_sets"].values()
                    for name, metrics in entry.get("fidelity", {}).items()
                    if isinstance(metrics, Mapping) and "precision" in metrics})
    if not found or found == [extractor]:
        return ""
    return f" (extractors with precision/recall in these files: {', '.join(found)}; choose one with --extractor)"


def pooled_radar(datasets: Mapping[str, Mapping[str, Any]], *, extractor: str) -> PooledRadar:
    """The radar over ``datasets`` (label -> schema-2 results document), with notes on what it leaves out.

    Never raises for missing metrics: a model absent from a data set, an axis a cell lacks and a radar that
    cannot be drawn (no model in every data set, fewer than MIN_RADAR_AXES axes) are notes.
    """
    values = radar_values(datasets, extractor=extractor)
    notes: list[str] = []
    order: list[str] = []
    for sets in values.values():
        order += [name for name in sets if name not in order]
    models = [name for name in order if all(name in sets for sets in values.values())]
    for name in order:
        if name not in models:
            absent = [label for label, sets in values.items() if name not in sets]
            notes.append(f"the radar (Fig. 7) leaves out synthetic set {name!r}: it is not in data set(s) "
                         f"{', '.join(absent)}, and a mean over fewer data sets would not be comparable")
    if not models:
        listed = "; ".join(f"{label}: {', '.join(sets)}" for label, sets in values.items())
        notes.append(f"no radar (Fig. 7): no synthetic set name is in every data set ({listed}); the radar "
                     "compares a model by its mean over the data sets, so name the same model alike in each run")
        return PooledRadar(values=values, models=[], axes=[], normalisation=None, notes=notes)
    axes = []
    for axis, definition in RADAR_AXES.items():
        missing = _missing_cells(values, models, axis)
        if not missing:
            axes.append(axis)
            continue
        hint = _extractor_hint(datasets, extractor) if axis in ("fidelity", "diversity") else ""
        notes.append(f"the radar (Fig. 7) leaves out the {axis} axis ({definition.reading}; metric "
                     f"{definition.metric}): missing in {', '.join(missing)}{hint}")
    if len(axes) < MIN_RADAR_AXES:
        notes.append(f"no radar (Fig. 7): only {len(axes)} axes ({', '.join(axes) or 'none'}) are present in every "
                     f"model x data set; a radar needs at least {MIN_RADAR_AXES}")
        return PooledRadar(values=values, models=models, axes=[], normalisation=None, notes=notes)
    return PooledRadar(values=values, models=models, axes=axes,
                       normalisation=normalise_pooled(values, models, axes), notes=notes)
