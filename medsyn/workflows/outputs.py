"""What every workflow writes after the evaluation layer returns its results document: results.json/.csv,
the figures, report.md and report.html (assessment and quickstart), or dp_sweep.png and dp_sweep.md (the
DP sweep). All of it through ``medsyn.report`` and the atomic writers of ``medsyn.io``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from medsyn.io.atomic import write_text_atomic

__all__ = ["write_assessment_report", "write_dp_sweep_report"]


def write_assessment_report(output: Path, results: Mapping[str, Any], *, figures: Mapping[str, str],
                            extractor: str, title: str) -> Path:
    """results.json/.csv, the radar (on ``extractor``) and regime bars, report.md and report.html; returns
    the path of report.md. figures: title -> path (relative to ``output``) of figures already written."""
    from medsyn.report.assessment_figures import save_regime_bars
    from medsyn.report.html import markdown_to_html
    from medsyn.report.markdown import render_report
    from medsyn.report.radar import save_radar
    from medsyn.report.results import write_results

    write_results(output, results)
    written = {"Radar (paper 000 Fig. 7)": "figures/radar.png"}
    save_radar(output / "figures/radar.png", results, extractor=extractor)
    for metric, name, label, number in (("accuracy", "utility", "Utility", 5),
                                        ("adversarial_accuracy", "robustness", "Robustness", 6)):
        if any(name in entry for entry in results["synthetic_sets"].values()):
            path = f"figures/{name}_bars.png"
            save_regime_bars(output / path, results, section=name, metric=metric,
                             title=f"{label}: {metric.replace('_', ' ')} vs Baseline Real and Geometric DA")
            written[f"{label} (paper 000 Fig. {number})"] = path
    markdown = render_report(results, figures={**written, **figures}, title=title)
    report_path = write_text_atomic(output / "report.md", markdown)
    write_text_atomic(output / "report.html", markdown_to_html(markdown, base_dir=output, title=title))
    return report_path


def write_dp_sweep_report(output: Path, results: Mapping[str, Any], *, extractor: str, title: str) -> Path:
    """dp_sweep.png and dp_sweep.md (results.json is written by the caller); returns dp_sweep.md's path."""
    from medsyn.report.dp_sweep_figure import save_dp_sweep_figure
    from medsyn.report.dp_sweep_tables import render_dp_sweep_markdown

    save_dp_sweep_figure(output / "dp_sweep.png", results, extractor=extractor, title=title)
    return write_text_atomic(output / "dp_sweep.md", render_dp_sweep_markdown(results, figure_name="dp_sweep.png"))
