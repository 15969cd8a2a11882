"""The ``medsyn_compare`` bundle's ``run``: merge one ``results.json`` per data set into paper 000's Fig. 7 (the
radar of the six trilemma axes per model, min-max normalised over models x data sets together), Figs. 5-6
(utility and robustness bars per data set, regime and multiplier, against both baselines) and one table of
every model x data set.

Every check runs before the first byte is written: the config (a non-empty list of ``{label, path}`` with
unique labels, ``report/compare_inputs.py``), the output folder (``io/output_folder.py``), each file (exists,
a medsyn results document of schema version 2, named once) and which metrics each figure needs (what is
missing is printed and written under "Left out" in compare.md, and the figure leaves it out).

Outputs (atomic writes, in a folder only this writer owns): ``compare.md``, ``compare.csv`` (the table),
``compare_metrics.csv`` (every statistic of every file), ``compare.json`` (the radar's values, bounds and
scores, the rows and the notes), ``figures/radar.png``, ``figures/utility_bars.png``,
``figures/robustness_bars.png``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from medsyn.config.strict import strict_arguments
from medsyn.io.output_folder import writes_output_folder
from medsyn.metrics.features.extract import DEFAULT_EXTRACTOR
from medsyn.report.compare_inputs import parse_compare_entries

__all__ = ["COMPARE_FORMAT", "run_compare"]

COMPARE_FORMAT = "medsyn-compare-v1"
# (section, metric, figure number in paper 000, file under figures/)
_BAR_FIGURES = (("utility", "accuracy", 5, "utility_bars.png"),
                ("robustness", "adversarial_accuracy", 6, "robustness_bars.png"))


def _run_settings(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """A re-run into ``output_dir`` must merge the same files (resolved paths) under the same labels with the
    same extractor: another comparison goes to another folder."""
    return {"results": [{"label": entry["label"], "path": str(Path(entry["path"]).resolve())}
                        for entry in arguments["results"]],
            "extractor": arguments["extractor"]}


@strict_arguments(sections={"results": parse_compare_entries})  # outermost: a bad config touches no folder
@writes_output_folder("output_dir", settings=_run_settings)
def run_compare(
    output_dir: str,
    *,
    results: Sequence[Mapping[str, str]],
    extractor: str = DEFAULT_EXTRACTOR,
    title: str = "medsyn comparison over data sets",
) -> Path:
    """Merge the results files; return the path of ``compare.md``.

    output_dir: new, empty or written by run_compare with the same results and extractor.
    results: one ``{"label": data-set name, "path": results.json}`` per data set (labels unique).
    extractor: the feature extractor whose precision / recall are the radar's fidelity / diversity axes.
    """
    from medsyn.io.atomic import write_json_atomic, write_text_atomic
    from medsyn.report.compare_figures import (
        bar_datasets,
        regime_bar_notes,
        save_pooled_radar,
        save_regime_bars_over_datasets,
    )
    from medsyn.report.compare_inputs import read_compared_results
    from medsyn.report.compare_radar import pooled_radar
    from medsyn.report.compare_report import render_compare_report
    from medsyn.report.compare_table import compare_metrics_csv, compare_rows, compare_table_csv

    output = Path(output_dir)
    compared = read_compared_results(results)
    datasets = {item.label: item.results for item in compared}
    radar = pooled_radar(datasets, extractor=extractor)
    notes = list(radar.notes)
    figures: dict[str, str] = {}
    if radar.drawn:
        figures["Radar (paper 000 Fig. 7)"] = "figures/radar.png"
    bars = []
    for section, metric, number, name in _BAR_FIGURES:
        caption = f"{section.capitalize()} (paper 000 Fig. {number})"
        notes += regime_bar_notes(datasets, section=section, metric=metric, figure=f"Fig. {number} ({section})")
        if bar_datasets(datasets, section=section, metric=metric):
            bars.append((section, metric, caption, name))
            figures[caption] = f"figures/{name}"
    rows = compare_rows(datasets, radar, extractor=extractor)
    report = render_compare_report(compared, radar, rows, figures=figures, notes=notes, extractor=extractor,
                                   title=title)
    normalisation = radar.normalisation
    summary = {
        "format": COMPARE_FORMAT,
        "inputs": [{"label": item.label, "path": str(item.path), "resolved_path": str(item.path.resolve()),
                    "workflow": item.results["workflow"]} for item in compared],
        "extractor": extractor,
        "radar": {"models": radar.models, "axes": radar.axes, "values": radar.values,
                  "bounds": None if normalisation is None else {a: list(b) for a, b in normalisation.bounds.items()},
                  "cells": None if normalisation is None else normalisation.cells,
                  "scores": None if normalisation is None else normalisation.scores},
        "rows": rows,
        "notes": notes,
    }
    for note in notes:
        print(f"medsyn compare: {note}")

    # every check has passed: the first write
    if radar.drawn:
        save_pooled_radar(output / "figures/radar.png", radar, extractor=extractor)
    for section, metric, caption, name in bars:
        save_regime_bars_over_datasets(output / "figures" / name, datasets, section=section, metric=metric,
                                       title=f"{caption}: {metric.replace('_', ' ')} vs Baseline Real and Geometric DA")
    stale = {"radar.png"} - ({"radar.png"} if radar.drawn else set())
    stale |= {name for *_, name in _BAR_FIGURES} - {name for *_, name in bars}
    for name in stale:  # a re-run of the same comparison whose files no longer hold what this figure needs
        (output / "figures" / name).unlink(missing_ok=True)
    write_text_atomic(output / "compare.csv", compare_table_csv(rows))
    write_text_atomic(output / "compare_metrics.csv", compare_metrics_csv(datasets))
    write_json_atomic(output / "compare.json", summary)
    report_path = write_text_atomic(output / "compare.md", report)
    print(f"medsyn: comparison of {len(compared)} data sets written to {report_path.resolve()}")
    return report_path
