"""The results document: ``{"models": {model: {metric: {"value": float, ...metadata}}}, "metadata": {...}}``.

Validation happens here, before anything is written: every metric name must be in the catalogue and
every value finite, so a NaN or an unknown metric can never reach a report as a number.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from medsyn.io.atomic import write_json_atomic, write_text_atomic
from medsyn.report.metric_catalog import describe_metric

__all__ = ["validate_results", "write_results", "results_table"]


def validate_results(results: Mapping[str, Any]) -> None:
    """Raise ValueError naming the model and metric of the first malformed entry."""
    models = results.get("models")
    if not isinstance(models, Mapping) or not models:
        raise ValueError("results must have a non-empty 'models' mapping")
    for model, metrics in models.items():
        if not isinstance(metrics, Mapping) or not metrics:
            raise ValueError(f"results['models'][{model!r}] must be a non-empty mapping of metric name -> entry")
        for metric, entry in metrics.items():
            describe_metric(metric)
            if not isinstance(entry, Mapping) or "value" not in entry:
                raise ValueError(f"results['models'][{model!r}][{metric!r}] must be a mapping with a 'value'")
            value = entry["value"]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"results['models'][{model!r}][{metric!r}]['value'] must be a finite number, got {value!r}")


def results_table(results: Mapping[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """(metric names, rows [model, value, value, ...]) with metrics in first-seen order."""
    metrics: list[str] = []
    for entries in results["models"].values():
        for metric in entries:
            if metric not in metrics:
                metrics.append(metric)
    rows = [
        [model] + [entries[m]["value"] if m in entries else None for m in metrics]
        for model, entries in results["models"].items()
    ]
    return metrics, rows


def write_results(output_dir: str | os.PathLike, results: Mapping[str, Any]) -> dict[str, Path]:
    """Validate, then write results.json and results.csv atomically into ``output_dir``."""
    validate_results(results)
    output_dir = Path(output_dir)
    metrics, rows = results_table(results)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["model", *metrics])
    for row in rows:
        writer.writerow(["" if v is None else (f"{v:.6g}" if isinstance(v, float) else v) for v in row])
    return {
        "json": write_json_atomic(output_dir / "results.json", results),
        "csv": write_text_atomic(output_dir / "results.csv", buffer.getvalue()),
    }
