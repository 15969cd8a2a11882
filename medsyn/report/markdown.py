"""report.md of any results document (schema 2, ``medsyn.report.results``): what was run on which data, the
tables of the sections present (``assessment_tables``), the figures, what each reported metric means, the
notes and the package versions. A section no synthetic set has is left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from medsyn.report.assessment_tables import fidelity_tables, not_computed_lines, privacy_table, utility_table
from medsyn.report.cost_table import cost_table_lines
from medsyn.report.metric_catalog import METRIC_CATALOG, metric_name_of
from medsyn.report.results import METRIC_SECTIONS, is_statistic, validate_results

__all__ = ["metric_meaning_lines", "render_report"]


def _metric_names(node: Any, path: str, found: set[str]) -> None:
    if is_statistic(node) or node is None:
        found.add(metric_name_of(path))
    elif isinstance(node, Mapping):
        for key, child in node.items():
            _metric_names(child, f"{path}.{key}", found)


def metric_meaning_lines(results: Mapping[str, Any]) -> list[str]:
    """"What the metrics mean": one bullet per catalogue metric the document holds, in catalogue order."""
    found: set[str] = set()
    for entry in results["synthetic_sets"].values():
        for section in METRIC_SECTIONS:
            if section in entry:
                _metric_names(entry[section], section, found)
    lines = ["## What the metrics mean", ""]
    for name in (name for name in METRIC_CATALOG if name in found):
        info = METRIC_CATALOG[name]
        direction = "higher is better" if info.higher_is_better else "lower is better"
        unit = f" [{info.unit}]" if info.unit else ""
        lines.append(f"- **{name}**{unit} ({info.axis}; {direction}): {info.meaning}.")
    return lines + [""]


def render_report(results: Mapping[str, Any], *, figures: Mapping[str, str], title: str) -> str:
    """report.md text of a schema-2 document (validated first: ValueError naming the bad key path).

    figures: caption -> path relative to the report, in display order.
    """
    validate_results(results)
    metadata = results["metadata"]
    data = metadata.get("data", {})
    lines = [f"# {title}", ""]
    lines += [
        (
            f"Workflow `{results['workflow']}`. Real data: {data.get('source', '?')}, images (C,H,W) "
            f"{data.get('image_shape', '?')}, classes {data.get('class_names', '?')}; split sizes "
            f"{data.get('split_sizes', '?')}. Seeds: {metadata.get('seeds', '?')}. Every cell is the mean over "
            "seeds with its 90% confidence interval (Student t) in brackets."
        ),
        "",
    ]
    protocol = metadata.get("protocol", {})
    if protocol:
        lines += [f"- **{topic}**: {text}" for topic, text in protocol.items()] + [""]
    lines += fidelity_tables(results)
    lines += privacy_table(results)
    lines += utility_table(results)
    lines += not_computed_lines(results)
    if figures:
        lines += ["## Figures", ""]
        for caption, path in figures.items():
            lines += [f"### {caption}", "", f"![{caption}]({path})", ""]
    lines += metric_meaning_lines(results)
    notes = metadata.get("notes", [])
    if notes:
        lines += ["## Notes", ""] + [f"- {note}" for note in notes] + [""]
    lines += cost_table_lines(metadata)
    versions = metadata.get("versions", {})
    if versions:
        lines += ["## Versions", "", ", ".join(f"{k} {v}" for k, v in versions.items()), ""]
    return "\n".join(lines)
