"""report.md: the results table, the radar figure and one line per metric on what it means."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from medsyn.report.metric_catalog import describe_metric
from medsyn.report.results import results_table

__all__ = ["render_markdown_report"]


def _format(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def render_markdown_report(results: Mapping[str, Any], *, title: str, figures: Mapping[str, str]) -> str:
    """``figures``: caption -> path relative to the report."""
    metrics, rows = results_table(results)
    lines = [f"# {title}", ""]
    metadata = results.get("metadata", {})
    if metadata:
        data = metadata.get("data", {})
        lines += [
            f"Data: {data.get('source', '?')}, {data.get('image_shape', '?')} images, "
            f"{data.get('num_classes', '?')} classes; split sizes {data.get('split_sizes', '?')}; "
            f"seed {metadata.get('seed', '?')}; features {metadata.get('extractor', '?')}.",
            "",
        ]
    lines += ["## Results", ""]
    lines.append("| model | " + " | ".join(metrics) + " |")
    lines.append("|---" * (len(metrics) + 1) + "|")
    for row in rows:
        lines.append("| " + " | ".join(_format(v) for v in row) + " |")
    lines.append("")
    for caption, path in figures.items():
        lines += [f"## {caption}", "", f"![{caption}]({path})", ""]
    lines += ["## What the metrics mean", ""]
    for metric in metrics:
        info = describe_metric(metric)
        direction = "higher is better" if info.higher_is_better else "lower is better"
        unit = f" [{info.unit}]" if info.unit else ""
        lines.append(f"- **{metric}**{unit} ({info.axis}; {direction}): {info.meaning}.")
    notes = metadata.get("notes", []) if metadata else []
    if notes:
        lines += ["", "## Notes", ""] + [f"- {note}" for note in notes]
    return "\n".join(lines) + "\n"
