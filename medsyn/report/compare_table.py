"""The merged table of a comparison over data sets: one row per model x data set (every synthetic set of every
results document), as Markdown and CSV, and every statistic of every document as one long CSV.

Row columns: the data-set label, the synthetic set, its kind and generator, the raw value of each radar axis
(``metric_catalog.RADAR_AXES``: the mean over seeds as the radar reads it), FID on the radar's extractor and,
for the models and axes the radar draws, the cell's min-max normalised value (``report/compare_radar.py``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import Any

from medsyn.report.assessment_tables import markdown_table
from medsyn.report.compare_radar import PooledRadar
from medsyn.report.metric_catalog import RADAR_AXES
from medsyn.report.results import flatten_for_csv

__all__ = ["compare_metrics_csv", "compare_rows", "compare_table_csv", "compare_table_lines", "radar_score_lines"]


def _column(axis: str) -> str:
    return axis.replace(" ", "_")


def compare_rows(datasets: Mapping[str, Mapping[str, Any]], radar: PooledRadar, *,
                 extractor: str) -> list[dict[str, Any]]:
    """One dict per (data set, synthetic set), data sets in the given order: ``data_set``, ``synthetic_set``,
    ``kind``, ``model``, each axis (raw mean or None), ``fid_<extractor>`` and ``score_<axis>`` (None unless
    the radar draws that model and axis)."""
    cells = radar.normalisation.cells if radar.normalisation else {}
    rows = []
    for label, results in datasets.items():
        for name, entry in results["synthetic_sets"].items():
            fid = entry.get("fidelity", {}).get(extractor, {}).get("fid")
            row: dict[str, Any] = {"data_set": label, "synthetic_set": name, "kind": entry["kind"],
                                   "model": entry.get("model")}
            row.update({_column(axis): radar.values[label][name][axis] for axis in RADAR_AXES})
            row[f"fid_{extractor}"] = None if fid is None else fid["mean"]
            row.update({f"score_{_column(axis)}": cells.get(label, {}).get(name, {}).get(axis) for axis in RADAR_AXES})
            rows.append(row)
    return rows


def compare_table_csv(rows: list[dict[str, Any]]) -> str:
    """compare.csv: the rows of :func:`compare_rows`, an empty cell where a value is absent."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header = list(rows[0])
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if row[key] is None else repr(row[key]) if isinstance(row[key], float) else row[key]
                         for key in header])
    return buffer.getvalue()


def compare_metrics_csv(datasets: Mapping[str, Mapping[str, Any]]) -> str:
    """compare_metrics.csv: every statistic of every document, the columns of ``results.csv``
    (``report/results.flatten_for_csv``) after a ``data_set`` column."""
    lines = []
    for index, (label, results) in enumerate(datasets.items()):
        body = list(csv.reader(io.StringIO(flatten_for_csv(results))))
        if index == 0:
            lines.append(["data_set", *body[0]])
        lines += [[label, *row] for row in body[1:]]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(lines)
    return buffer.getvalue()


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def compare_table_lines(rows: list[dict[str, Any]], *, extractor: str) -> list[str]:
    """The Markdown table of every model x data set: raw axis values (arrow: the better direction), FID, and the
    normalised radar cells in brackets where the radar draws them."""
    header = ["Data set", "Synthetic set"]
    for axis, definition in RADAR_AXES.items():
        header.append(f"{axis} ({definition.metric}) {'↑' if definition.higher_is_better else '↓'}")
    header.append(f"FID {extractor} ↓")
    table = []
    for row in rows:
        cells = [row["data_set"], row["synthetic_set"]]
        for axis in RADAR_AXES:
            score = row[f"score_{_column(axis)}"]
            cells.append(_number(row[_column(axis)]) + ("" if score is None else f" ({score:.2f})"))
        cells.append(_number(row[f"fid_{extractor}"]))
        table.append(cells)
    return markdown_table(header, table)


def radar_score_lines(radar: PooledRadar) -> list[str]:
    """The radar's numbers: each model's score per axis, then each axis's pooled min and max."""
    if radar.normalisation is None:
        return []
    normalisation = radar.normalisation
    lines = markdown_table(["Model", *radar.axes],
                           [[model, *(f"{normalisation.scores[model][axis]:.3f}" for axis in radar.axes)]
                            for model in radar.models])
    bounds = [[axis, RADAR_AXES[axis].metric, _number(low), _number(high),
               "higher" if RADAR_AXES[axis].higher_is_better else "lower (inverted on the radar)"]
              for axis, (low, high) in normalisation.bounds.items()]
    return lines + markdown_table(["Axis", "metric", "min", "max", "better"], bounds)
