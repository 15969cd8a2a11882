"""The report's "Where the time and memory went" table, from ``metadata.costs`` of a results document
(written by ``medsyn.evaluation.stage_costs.StageCosts``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["cost_table_lines"]

_MIB = 1024 * 1024


def cost_table_lines(metadata: Mapping[str, Any]) -> list[str]:
    """Markdown lines: one row per stage (seconds, share of the staged time, calls, peak RSS at its end),
    then the process's peak RSS; no lines when the document has no ``costs``."""
    costs = metadata.get("costs")
    if not costs or not costs.get("stages"):
        return []
    stages = costs["stages"]
    total = sum(entry["seconds"] for entry in stages.values()) or 1.0
    lines = ["## Where the time and memory went", "",
             "| stage | seconds | share | calls | peak RSS at its end (MiB) |", "|---|---|---|---|---|"]
    for name, entry in sorted(stages.items(), key=lambda item: -item[1]["seconds"]):
        lines.append(f"| {name} | {entry['seconds']:.1f} | {100 * entry['seconds'] / total:.0f}% | "
                     f"{entry['calls']} | {entry['peak_rss_bytes'] / _MIB:.0f} |")
    lines += ["", f"Peak RSS of the process: {costs['peak_rss_bytes'] / _MIB:.0f} MiB (largest child process: "
              f"{costs.get('peak_rss_children_bytes', 0) / _MIB:.0f} MiB). Wall time of the whole run: "
              f"{metadata.get('wall_seconds', float('nan')):.1f} s.", ""]
    return lines
