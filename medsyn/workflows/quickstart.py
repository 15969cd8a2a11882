"""The quickstart bundle's ``run``: a preset of the assessment (``medsyn.evaluation``) with one seed and the
stages a first look needs. Three conditional generators are trained on a small labelled image set and each
synthetic set is scored on the six axes of the extended trilemma:

- fidelity and diversity: precision, recall, density, coverage (k = prdc_k) and FID on ``extractor``
  features, the synthetic set (as many images per class as the real training split) against the real
  training split;
- sampling speed (paper 000 §4.1.3);
- utility and robustness: Baseline Real and Data Anonymization at 1x (a classifier trained on the
  synthetic set only), accuracy and DeepFool adversarial accuracy on the real test split;
- privacy: SSIM-max against the generators' training members (paper 000 §4.1.6).

Outputs are those of the assessment (results.json in the one results schema, report.md/.html, figures/,
split_manifest.json, models/<name>/seed<k>/checkpoint.pt and synthetic.npz).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from medsyn.config.data import QuickstartData
from medsyn.config.sections import QuickstartPrivacy, SpeedSection, parse_classifier, parse_quickstart_models
from medsyn.config.strict import strict_arguments
from medsyn.config.tracking import TrackingSection
from medsyn.io.output_folder import writes_output_folder
from medsyn.metrics.features.extract import DEFAULT_EXTRACTOR, FEATURE_BATCH_SIZE
from medsyn.metrics.prdc import DEFAULT_K as PRDC_K
from medsyn.metrics.robustness import DEEPFOOL_STEPS
from medsyn.workflows.tracking import adopted_config_names, check_tracking, log_run

__all__ = ["QUICKSTART_REGIMES", "run_quickstart"]

# The utility regimes of the preset: the real baseline and a classifier trained on synthetic images only.
QUICKSTART_REGIMES = ("baseline_real", "data_anonymization")


def _run_settings(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """What a re-run into ``output_dir`` reuses (the split, the checkpoints) depends on: data, seed and each
    generator's settings (medsyn.models.registry.generator_settings: more steps may resume a checkpoint)."""
    from medsyn.models.registry import generator_settings

    return {"data": arguments["data"], "seed": arguments["seed"],
            "models": {name: generator_settings(name, spec["config"]) for name, spec in arguments["models"].items()}}


@strict_arguments(
    sections={
        "data": QuickstartData,
        "models": parse_quickstart_models,
        "speed": SpeedSection,
        "classifier": parse_classifier,
        "privacy": QuickstartPrivacy,
        "tracking": TrackingSection,
    }
)  # outermost: a bad config is refused before the output folder is touched
@writes_output_folder("output_dir", settings=_run_settings, adopt=adopted_config_names)
def run_quickstart(
    output_dir: str,
    *,
    data: Mapping[str, Any],
    models: Mapping[str, Mapping[str, Any]],
    seed: int = 0,
    extractor: str = DEFAULT_EXTRACTOR,
    feature_batch_size: int = FEATURE_BATCH_SIZE,
    prdc_k: int = PRDC_K,
    speed: Mapping[str, int],
    classifier: Mapping[str, Any],
    robustness_steps: int = DEEPFOOL_STEPS,
    privacy: Mapping[str, Any],
    progress: bool = True,
    tracking: Mapping[str, Any] | None = None,
) -> Path:
    """Run the quickstart preset; return the path of ``report.md``.

    output_dir: new, empty or written by run_quickstart with the same data, seed and generator settings.
    data: {"kind", "options", "per_class"} (medsyn.data.sources); models: generator name -> {"config": its
    model-config and training keys}; seed: the split, the generators' training and every classifier;
    speed, classifier, privacy: config sections (``medsyn.config.sections``); robustness_steps: DeepFool
    iterations (paper 000 §4.1.5); tracking: log the run to MLflow (``medsyn.config.tracking``, off by default).
    """
    from medsyn.evaluation.assessment import assess
    from medsyn.evaluation.feature_spaces import FeatureSpaces
    from medsyn.evaluation.protocol import Protocol
    from medsyn.workflows.outputs import write_assessment_report

    check_tracking(tracking)
    protocol = Protocol(regimes=QUICKSTART_REGIMES, multipliers=(1,), classifier=dict(classifier),
                        robustness={"steps": robustness_steps},
                        fidelity_metrics=("precision", "recall", "density", "coverage", "fid"), prdc_k=prdc_k,
                        ssim=dict(privacy), gallery_top=16, speed=dict(speed), save_synthetic=True)
    spaces = FeatureSpaces.from_settings({"extractors": [extractor], "batch_size": feature_batch_size},
                                         dcr_extractor=None)
    sets = {name: {"kind": "generator", "model": name, "config": dict(spec["config"])} for name, spec in models.items()}
    config = {"data": data, "models": models, "classifier": classifier, "speed": speed, "privacy": privacy,
              "extractor": extractor, "prdc_k": prdc_k, "robustness_steps": robustness_steps}
    results, figures = assess(Path(output_dir), data={**data, "split_seed": seed}, synthetic_sets=sets,
                              seeds=[seed], protocol=protocol, spaces=spaces, workflow="quickstart",
                              config=config, progress=progress)
    report_path = write_assessment_report(Path(output_dir), results, figures=figures, extractor=extractor,
                                          title="medsyn quickstart report")
    print(f"medsyn: report written to {report_path.resolve()}")
    log_run(tracking, Path(output_dir), config={**config, "seed": seed}, results=results)
    return report_path
