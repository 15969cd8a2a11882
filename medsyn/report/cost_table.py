"""The report's "Where the time and memory went" table, from ``metadata.costs`` of a results document
(written by ``medsyn.evaluation.stage_costs.StageCosts``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["cost_table_lines", "work_text"]

_MIB = 1024 * 1024


def work_text(entry: Mapping[str, Any]) -> str:
    """"9,600 images (3,200/s)" for a stage that counted its work; "" for one that did not."""
    items = entry.get("items")
    if not items:
        return ""
    rate = items / entry["seconds"] if entry["seconds"] > 0 else float("inf")
    return f"{items:,} {entry['unit']} ({rate:,.1f}/s)"


def cost_table_lines(metadata: Mapping[str, Any]) -> list[str]:
    """Markdown lines: one row per stage (seconds, share of the staged time, calls, peak RSS at its end,
    what it worked through and at what rate where it counted that), then the process's peak RSS; no lines
    when the document has no ``costs``."""
    costs = metadata.get("costs")
    if not costs or not costs.get("stages"):
        return []
    stages = costs["stages"]
    total = sum(entry["seconds"] for entry in stages.values()) or 1.0
    lines = ["## Where the time and memory went", "",
             "| stage | seconds | share | calls | peak RSS at its end (MiB) | work (rate) |",
             "|---|---|---|---|---|---|"]
    for name, entry in sorted(stages.items(), key=lambda item: -item[1]["seconds"]):
        lines.append(f"| {name} | {entry['seconds']:.1f} | {100 * entry['seconds'] / total:.0f}% | "
                     f"{entry['calls']} | {entry['peak_rss_bytes'] / _MIB:.0f} | {work_text(entry)} |")
    lines += ["", f"Peak RSS of the process: {costs['peak_rss_bytes'] / _MIB:.0f} MiB (largest child process: "
              f"{costs.get('peak_rss_children_bytes', 0) / _MIB:.0f} MiB). Wall time of the whole run: "
              f"{metadata.get('wall_seconds', float('nan')):.1f} s.", ""]
    return lines
