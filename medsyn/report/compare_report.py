"""compare.md, the report of a comparison over data sets: which results files were merged, the radar (paper 000
Fig. 7) with its numbers, the utility and robustness bars (Figs. 5-6), the table of every model x data set and
what the figures leave out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from medsyn.report.assessment_tables import markdown_table
from medsyn.report.compare_inputs import ComparedResults
from medsyn.report.compare_radar import PooledRadar
from medsyn.report.compare_table import compare_table_lines, radar_score_lines

__all__ = ["render_compare_report"]


def _input_lines(compared: Sequence[ComparedResults]) -> list[str]:
    rows = []
    for item in compared:
        metadata = item.results["metadata"]
        source = metadata.get("data", {}).get("source", "?")
        rows.append([item.label, f"`{item.path}`", item.results["workflow"], str(source),
                     ", ".join(item.results["synthetic_sets"]), str(metadata.get("seeds", "?"))])
    return markdown_table(["Data set", "results file", "workflow", "real data", "synthetic sets", "seeds"], rows)


def render_compare_report(compared: Sequence[ComparedResults], radar: PooledRadar, rows: list[dict[str, Any]], *,
                          figures: Mapping[str, str], notes: Sequence[str], extractor: str, title: str) -> str:
    """compare.md text. figures: caption -> path relative to the report; notes: what the figures leave out."""
    lines = [f"# {title}", "", "Merged from one medsyn results file per data set:", ""]
    lines += _input_lines(compared)
    if radar.normalisation is not None:
        lines += [
            "## Radar (paper 000 Fig. 7)", "",
            f"Each axis is min-max normalised over the {len(radar.models)} models x {len(compared)} data sets "
            "together (paper 000 §5.4: the minimum and maximum among all model x data-set values), then each model's "
            "score is the mean of its normalised values over the data sets. Privacy (max-SSIM, lower is better) is "
            "inverted so that outward is better on every axis; an axis where every value is equal scores 1.0. "
            f"Fidelity and diversity are precision and recall on `{extractor}`.", "",
        ]
        lines += radar_score_lines(radar)
    lines += [
        "## Every model x data set", "",
        "Raw values: the mean over seeds as the radar reads each axis (utility and robustness: averaged over the "
        "synthetic regimes and multipliers present); in brackets the normalised value where the radar draws it. "
        "Every statistic with its 90% CI is in `compare_metrics.csv`.", "",
    ]
    lines += compare_table_lines(rows, extractor=extractor)
    if figures:
        lines += ["## Figures", ""]
        for caption, path in figures.items():
            lines += [f"### {caption}", "", f"![{caption}]({path})", ""]
    if notes:
        lines += ["## Left out", ""] + [f"- {note}" for note in notes] + [""]
    return "\n".join(lines)
