"""The ``medsyn_dp_sweep`` bundle's ``run``: fidelity, privacy and utility of a generator against the DP-SGD
noise multiplier sigma (paper 001 §3-4, Fig. 2, Table 1), over seeds with 90% confidence intervals. The
protocol is ``medsyn.evaluation.dp_sweep``; outputs: ``results.json`` (the one results schema, one synthetic
set per sigma), ``dp_sweep.png`` (a panel per metric, mean line + 90% CI band), ``dp_sweep.md`` and per run
``seed_<k>/sigma_<s>/`` (checkpoint, synthetic.npz). A killed sweep resumes from the checkpoints.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from medsyn.config.data import DataSection
from medsyn.config.generators import parse_generator_overrides
from medsyn.config.sections import (
    PAPER_PER_CLASS,
    PAPER_SEEDS,
    PAPER_SIGMAS,
    parse_classifier,
    parse_seeds,
    parse_sigmas,
    parse_sweep_empirical_epsilon,
)
from medsyn.config.strict import strict_arguments
from medsyn.config.tracking import TrackingSection
from medsyn.io.output_folder import writes_output_folder
from medsyn.metrics.features.extract import DEFAULT_EXTRACTOR, FEATURE_BATCH_SIZE
from medsyn.training.dp_grid import PAPER_UTILITY_PER_CLASS
from medsyn.training.settings import DPSettings
from medsyn.workflows.tracking import adopted_config_names, check_tracking, log_run

__all__ = ["run_dp_sweep"]


def _model_config(value: Any, path: str, model: str) -> dict[str, Any]:
    return parse_generator_overrides(model, dict(value or {}), path=path, training_keys=False)


def _run_settings(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """What a re-run into ``output_dir`` reuses (each seed's split, each run's checkpoints) depends on: data,
    per_class, the generator (whole model config), batch_size and max_grad_norm. Seeds and sigmas may be
    added (their runs are separate folders) and steps may grow (checkpoints resume)."""
    from medsyn.models.registry import model_config_of

    data, model = arguments["data"], arguments["model"]
    model_config = _model_config(arguments["model_config"], "model_config", model)
    return {"data": {"kind": data["kind"], "options": dict(data["options"])}, "per_class": arguments["per_class"],
            "model": model, "model_config": model_config_of(model, model_config),
            "batch_size": arguments["batch_size"], "max_grad_norm": arguments["max_grad_norm"]}


@strict_arguments(
    sections={"data": DataSection, "sigmas": parse_sigmas, "seeds": parse_seeds, "classifier": parse_classifier,
              "empirical_epsilon": parse_sweep_empirical_epsilon, "tracking": TrackingSection}
)  # outermost: a bad config is refused before the output folder is touched
@writes_output_folder("output_dir", settings=_run_settings, adopt=adopted_config_names)
def run_dp_sweep(
    output_dir: str,
    *,
    data: Mapping[str, Any],
    model: str = "cvae",
    model_config: Mapping[str, Any] | None = None,
    sigmas: Sequence[float] = PAPER_SIGMAS,
    seeds: Sequence[int] = PAPER_SEEDS,
    per_class: int | None = PAPER_PER_CLASS,
    steps: int,
    batch_size: int,
    max_grad_norm: float = DPSettings.max_grad_norm,
    extractor: str = DEFAULT_EXTRACTOR,
    feature_batch_size: int = FEATURE_BATCH_SIZE,
    classifier: Mapping[str, Any],
    empirical_epsilon: Mapping[str, Any] | None = None,
    utility_per_class: int = PAPER_UTILITY_PER_CLASS,
    vgg16_weights: str | None = None,
    progress: bool = True,
    tracking: Mapping[str, Any] | None = None,
) -> Path:
    """Run the sweep; return the path of ``dp_sweep.md`` (``results.json`` and ``dp_sweep.png`` beside it).

    output_dir: new, empty or written by run_dp_sweep with the same data-affecting settings.
    data: {"kind", "options"}; per_class: training images per class (paper 001: 10; null: all).
    model, model_config: a registered generator and its model-config overrides (no training keys: steps,
        batch_size (under DP the expected Poisson batch) and max_grad_norm C are arguments here).
    sigmas: DP-SGD noise multipliers, 0 trains without DP; classifier: the utility classifier section;
    empirical_epsilon: None, or the [empirical_epsilon] section (trains two more generators per run: victim
        and ablated, paper 001 §3.2).
    utility_per_class: synthetic images per class the utility classifier trains on (001 §3.4: 100), a
        multiple of per_class; vgg16_weights: a torchvision-format VGG16 weights file for LPIPS (None: LPIPS
        is not computed and results say so under not_computed.lpips).
    tracking: log the run to MLflow (``medsyn.config.tracking``, off by default); losses per (seed, sigma).
    """
    from medsyn.evaluation.dp_sweep import run_dir_of, sweep, sweep_notes, utility_multiplier
    from medsyn.report.results import SCHEMA_VERSION, write_results
    from medsyn.report.run_metadata import machine_description, package_versions
    from medsyn.workflows.outputs import write_dp_sweep_report

    check_tracking(tracking)
    started = time.perf_counter()
    model_config = _model_config(model_config, "model_config", model)
    for name, value in (("steps", steps), ("batch_size", batch_size)):
        if isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not max_grad_norm > 0:
        raise ValueError(f"max_grad_norm must be > 0, got {max_grad_norm!r}")
    utility_multiplier(utility_per_class, per_class)  # a bad value fails before any data is read
    if vgg16_weights is not None and not (isinstance(vgg16_weights, str) and Path(vgg16_weights).is_file()):
        raise ValueError(f"vgg16_weights: expected the path of a VGG16 weights file or null, got {vgg16_weights!r}")
    output = Path(output_dir)
    swept = sweep(output, data=data, model=model, model_config=model_config, sigmas=sigmas, seeds=seeds,
                  per_class=per_class, steps=steps, batch_size=batch_size, max_grad_norm=max_grad_norm,
                  extractor=extractor, feature_batch_size=feature_batch_size, classifier=classifier,
                  empirical_epsilon=empirical_epsilon, progress=progress,
                  utility_per_class=utility_per_class, vgg16_weights=vgg16_weights)
    results = {
        "schema_version": SCHEMA_VERSION,
        "workflow": "dp_sweep",
        "synthetic_sets": swept["synthetic_sets"],
        "metadata": {
            "model": model, "model_config": model_config, "sigmas": list(sigmas), "seeds": list(seeds),
            "n_seeds": len(seeds), "per_class": per_class, "steps": steps, "batch_size": batch_size,
            "max_grad_norm": max_grad_norm, "extractor": extractor, "classifier": dict(classifier),
            "empirical_epsilon": empirical_epsilon, "utility_per_class": utility_per_class,
            "vgg16_weights": vgg16_weights, "data": swept["data"], "versions": package_versions(),
            "machine": machine_description(), "wall_seconds": time.perf_counter() - started,
            "costs": swept["costs"],
            "notes": sweep_notes(extractor, empirical=empirical_epsilon is not None),
        },
    }
    write_results(output, results)
    report_path = write_dp_sweep_report(output, results, extractor=extractor,
                                        title=f"{model}: {per_class} images per class, {len(seeds)} seeds (mean, 90% CI)")
    print(f"medsyn: DP sweep written to {report_path.resolve()}")
    config = {key: value for key, value in results["metadata"].items()
              if key not in ("versions", "machine", "wall_seconds", "costs", "notes", "data", "seeds", "n_seeds")}
    log_run(tracking, output, config={**config, "data": data}, results=results,
            checkpoint_of=lambda name, entry, seed: run_dir_of(output, seed, entry["dp"]["sigma"]) / "checkpoint.pt")
    return report_path

