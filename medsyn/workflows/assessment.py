"""The ``medsyn_assessment`` bundle's ``run``: the full protocol of papers 000 (§4.1) and 001 (§3.2-3.4) over
seeds, for one real data set and one or more synthetic sets (``medsyn.evaluation`` holds the protocol).

    run_assessment("runs/assess", data={"kind": "digits", "options": {"size": 32}, "per_class": 20},
                   synthetic_sets={"cvae": {"kind": "generator", "model": "cvae", "config": {...}},
                                   "theirs": {"kind": "folder", "path": "gan_out/", "labels_csv": "gan_out/labels.csv"}},
                   seeds=[0, 1, 2], utility={...}, robustness={...}, privacy={...}, fidelity={...})

Synthetic set kinds and the protocol's choices: ``medsyn.evaluation.synthetic_sources`` and
``medsyn.evaluation.protocol``. Outputs: results.json (schema: ``medsyn.report.results``), results.csv,
figures/, report.md, report.html, split_manifest.json and models/<set>/seed<k>/.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from medsyn.config.sections import (
    PAPER_SEEDS,
    AssessmentData,
    AssessmentPrivacy,
    FidelitySection,
    RobustnessSection,
    SpeedSection,
    UtilitySection,
    parse_classifier,
    parse_seeds,
    parse_synthetic_sets,
)
from medsyn.config.strict import strict_arguments
from medsyn.config.tracking import TrackingSection
from medsyn.io.output_folder import writes_output_folder
from medsyn.workflows.tracking import adopted_config_names, check_tracking, log_run

__all__ = ["run_assessment"]


def _run_settings(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """What a re-run into ``output_dir`` reuses (the real split, the per-seed generator checkpoints) depends
    on: the data split settings and each generator set's settings. Seeds may be added, scoring settings may
    change (results are recomputed) and steps may grow (checkpoints resume)."""
    from medsyn.models.registry import generator_settings

    data, sets = arguments["data"], arguments["synthetic_sets"]
    generators = {name: generator_settings(spec["model"], spec.get("config"))
                  for name, spec in sets.items() if spec["kind"] == "generator"}
    return {"data": {key: data[key] for key in ("kind", "options", "per_class", "split_seed")},
            "generators": generators}


@strict_arguments(
    sections={
        "data": AssessmentData,
        "synthetic_sets": parse_synthetic_sets,
        "seeds": parse_seeds,
        "utility": UtilitySection,
        "robustness": RobustnessSection,
        "privacy": AssessmentPrivacy,
        "fidelity": FidelitySection,
        "speed": SpeedSection,
        "tracking": TrackingSection,
    }
)  # outermost: a bad config is refused before the output folder is touched
@writes_output_folder("output_dir", settings=_run_settings, adopt=adopted_config_names)
def run_assessment(
    output_dir: str,
    *,
    data: Mapping[str, Any],
    synthetic_sets: Mapping[str, Mapping[str, Any]],
    seeds: Sequence[int] = PAPER_SEEDS,
    utility: Mapping[str, Any] | None = None,
    robustness: Mapping[str, Any] | None = None,
    privacy: Mapping[str, Any] | None = None,
    fidelity: Mapping[str, Any] | None = None,
    speed: Mapping[str, Any] | None = None,
    progress: bool = True,
    tracking: Mapping[str, Any] | None = None,
) -> Path:
    """Run the whole protocol; write results.json/.csv, figures, report.md and report.html; return report.md.

    output_dir: new, empty or written by run_assessment with the same data split and generator settings
        (``_run_settings``; otherwise refused before anything is written, naming the differing keys).
    Every other argument is a config section (``medsyn.config.sections``, which holds every default and
    refuses unknown keys by path): data (AssessmentData), synthetic_sets (SyntheticSet*), seeds (at least 3
    for a meaningful 90% interval), utility, robustness, privacy, fidelity, speed; tracking: log the run to
    MLflow (``medsyn.config.tracking``, off by default).
    """
    from medsyn.evaluation.assessment import assess
    from medsyn.evaluation.feature_spaces import FeatureSpaces
    from medsyn.evaluation.protocol import Protocol
    from medsyn.workflows.outputs import write_assessment_report

    check_tracking(tracking)
    classifier = parse_classifier(utility["classifier"], "utility.classifier")
    protocol = Protocol.from_sections(utility=utility, classifier=classifier, robustness=robustness,
                                      privacy=privacy, fidelity=fidelity, speed=speed)
    spaces = FeatureSpaces.from_settings(fidelity, dcr_extractor=privacy["dcr_feature_extractor"])
    config = {"data": data, "utility": utility, "robustness": robustness, "privacy": privacy, "fidelity": fidelity}
    results, figures = assess(Path(output_dir), data=data, synthetic_sets=synthetic_sets, seeds=seeds,
                              protocol=protocol, spaces=spaces, workflow="assessment", config=config,
                              progress=progress)
    radar_extractor = spaces.names[0] if spaces.names else "domain_baseline_real"
    report_path = write_assessment_report(Path(output_dir), results, figures=figures, extractor=radar_extractor,
                                          title="medsyn assessment")
    if progress:
        print(f"medsyn: assessment report written to {report_path.resolve()}")
    log_run(tracking, Path(output_dir), config={**config, "synthetic_sets": synthetic_sets, "speed": speed},
            results=results)
    return report_path
