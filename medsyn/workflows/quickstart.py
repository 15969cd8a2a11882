"""The quickstart: train three conditional generators on a small labelled image set, generate a synthetic
set from each, score all six axes of the extended trilemma and write the report.

This is the function the quickstart bundle's ``run`` calls; each stage is a call into the package and
each stage's artefact is written to ``output_dir`` (split manifest, checkpoints, synthetic sets,
results, figures, report), so any stage can be inspected or re-run alone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from medsyn.config.data import QuickstartData
from medsyn.config.sections import (
    QuickstartPrivacy,
    SpeedSection,
    parse_classifier,
    parse_quickstart_models,
)
from medsyn.config.strict import strict_arguments
from medsyn.data.image_set import ImageSet
from medsyn.io.atomic import write_bytes_atomic, write_text_atomic
from medsyn.io.output_folder import writes_output_folder
from medsyn.metrics.features.extract import DEFAULT_EXTRACTOR, FEATURE_BATCH_SIZE
from medsyn.metrics.prdc import DEFAULT_K as PRDC_K
from medsyn.metrics.robustness import DEEPFOOL_STEPS
from medsyn.report.markdown import render_markdown_report
from medsyn.report.radar import radar_scores, save_radar
from medsyn.report.results import write_results
from medsyn.report.run_metadata import machine_description, package_versions

__all__ = ["run_quickstart", "synthetic_labels_like"]

logger = logging.getLogger(__name__)


def synthetic_labels_like(real: ImageSet) -> torch.Tensor:
    """Labels int64 [len(real)] with the same count per class as ``real`` (sorted by class)."""
    return torch.repeat_interleave(torch.arange(real.num_classes), torch.tensor(real.class_counts()))


def _save_synthetic(path: Path, images: torch.Tensor, labels: torch.Tensor) -> None:
    import io

    buffer = io.BytesIO()
    np.savez_compressed(buffer, images=images.numpy(), labels=labels.numpy())
    write_bytes_atomic(path, buffer.getvalue())


def _run_settings(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """What a re-run into ``output_dir`` reuses (the split, the checkpoints) depends on: data, seed and each
    generator's settings (medsyn.models.registry.generator_settings: more steps may resume a checkpoint)."""
    from medsyn.models.registry import generator_settings

    models = arguments["models"]
    return {
        "data": arguments["data"],
        "seed": arguments["seed"],
        "models": {
            name: generator_settings(name, spec.get("config")) if isinstance(spec, Mapping) else spec
            for name, spec in (models.items() if isinstance(models, Mapping) else [])
        },
    }


@strict_arguments(
    sections={
        "data": QuickstartData,
        "models": parse_quickstart_models,
        "speed": SpeedSection,
        "classifier": parse_classifier,
        "privacy": QuickstartPrivacy,
    }
)  # outermost: a bad config is refused before the output folder is touched
@writes_output_folder("output_dir", settings=_run_settings)
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
) -> Path:
    """Run the whole quickstart; return the path of ``report.md``.

    output_dir: new, empty or written by run_quickstart with the same data, seed and generator settings
        (medsyn.io.output_folder; otherwise refused before anything is written).

    data: {"kind": source name, "options": {...}, "per_class": k or None} (see medsyn.data.sources)
    models: generator name -> {"config": overrides of its config, "steps", "batch_size", "checkpoint_every"}
    speed: {"count": samples per call, "warmup": untimed calls first, "repeats": timed calls}
    classifier: {"arch", "epochs", "batch_size", "lr"} for the utility / robustness classifiers
    privacy: {"q": synthetic images per repetition, "repeats": l} (paper 000 §4.1.6: q=100, l=10)
    """
    from medsyn.data.sources import draw_splits
    from medsyn.data.split import save_split_manifest
    from medsyn.metrics import fid, prdc
    from medsyn.metrics.features.extract import extract_features
    from medsyn.metrics.privacy import ssim_max_privacy
    from medsyn.metrics.robustness import adversarial_accuracy
    from medsyn.metrics.speed import sampling_speed
    from medsyn.models.classifier_training import evaluate_classifier, train_classifier
    from medsyn.models.registry import build_generator

    if not models:
        raise ValueError("models is empty: name at least one generator (e.g. cvae, stylegan2, ddpm)")
    output_dir_path = Path(output_dir)
    output_dir_path.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    stages = ["data", "real features", "baseline classifier"] + [f"{name}" for name in models] + ["report"]
    overall = tqdm(total=len(stages), desc="quickstart", disable=not progress, position=0)

    def advance(stage: str) -> None:
        overall.set_postfix_str(stage)
        overall.update(1)

    splits, split_manifest = draw_splits(
        data["kind"], dict(data.get("options", {})), seed=seed, per_class=data.get("per_class")
    )
    train, val, test = splits["train"], splits["val"], splits["test"]
    # every model config against the data (image size, classes) before the first byte is written
    generators = {
        name: build_generator(
            name, num_classes=train.num_classes, image_shape=train.image_shape, **dict(spec.get("config", {}))
        )
        for name, spec in models.items()
    }
    save_split_manifest(split_manifest, output_dir_path / "split_manifest.json")
    advance("data")

    real_features = extract_features(train.images, extractor, batch_size=feature_batch_size, progress=progress)
    advance("real features")

    def fit_classifier(train_set: ImageSet, classifier_seed: int) -> torch.nn.Module:
        model, _history = train_classifier(
            train_set,
            val,
            arch=classifier["arch"],
            epochs=classifier["epochs"],
            batch_size=classifier["batch_size"],
            lr=classifier["lr"],
            seed=classifier_seed,
            augment=False,
            progress=progress,
        )
        return model

    baseline_model = fit_classifier(train, seed)
    baseline_accuracy = evaluate_classifier(baseline_model, test)["accuracy"]
    baseline_robustness = adversarial_accuracy(baseline_model, test, steps=robustness_steps)
    advance("baseline classifier")

    results_models: dict[str, dict[str, Any]] = {}
    labels = synthetic_labels_like(train)
    for name, generator in generators.items():
        model_dir = output_dir_path / "models" / name
        fit_started = time.perf_counter()
        generator.fit(train, model_dir / "checkpoint.pt", seed=seed, progress=progress)
        fit_seconds = time.perf_counter() - fit_started
        synthetic_images = generator.sample(labels, seed=seed + 1)
        _save_synthetic(model_dir / "synthetic.npz", synthetic_images, labels)
        synthetic = ImageSet(synthetic_images.float().contiguous(), labels.clone(), train.class_names, f"{name} samples")

        synthetic_features = extract_features(
            synthetic.images, extractor, batch_size=feature_batch_size, progress=progress
        )
        manifold = prdc(real_features, synthetic_features, k=prdc_k)
        speed_labels = torch.arange(speed["count"]) % train.num_classes
        speed_result = sampling_speed(
            lambda batch_labels, generator=generator: generator.sample(batch_labels, seed=seed),
            speed_labels,
            warmup=speed["warmup"],
            repeats=speed["repeats"],
        )
        synthetic_model = fit_classifier(synthetic, seed)
        privacy_result = ssim_max_privacy(
            synthetic.images, train.images, q=privacy["q"], repeats=privacy["repeats"], seed=seed
        )
        feature_meta = {"extractor": extractor, "k": prdc_k, "n_real": len(train), "n_synthetic": len(synthetic)}
        classifier_meta = {"arch": classifier["arch"], "epochs": classifier["epochs"], "n_test": len(test)}
        results_models[name] = {
            f"precision_{extractor}": {"value": manifold["precision"], **feature_meta},
            f"recall_{extractor}": {"value": manifold["recall"], **feature_meta},
            f"density_{extractor}": {"value": manifold["density"], **feature_meta},
            f"coverage_{extractor}": {"value": manifold["coverage"], **feature_meta},
            f"fid_{extractor}": {"value": fid(real_features, synthetic_features), **feature_meta},
            "sampling_speed": {**speed_result, "unit": "samples/s"},
            "utility_real_baseline": {"value": baseline_accuracy, **classifier_meta, "train": "real"},
            "utility_synthetic_only": {
                "value": evaluate_classifier(synthetic_model, test)["accuracy"],
                **classifier_meta,
                "train": f"{len(synthetic)} synthetic images",
            },
            "robustness_real_baseline": {"value": baseline_robustness, **classifier_meta, "attack": "deepfool",
                                         "steps": robustness_steps},
            "robustness_synthetic_only": {
                "value": adversarial_accuracy(synthetic_model, test, steps=robustness_steps),
                **classifier_meta,
                "attack": "deepfool",
                "steps": robustness_steps,
            },
            "privacy_ssim_max_paper": {**privacy_result["ssim_max_paper"], "protocol": "paper 000 §4.1.6"},
            "privacy_ssim_max_full": {**privacy_result["ssim_max_full"], "protocol": "every synthetic image"},
        }
        results_models[name]["sampling_speed"]["fit_seconds"] = fit_seconds
        advance(name)

    results = {
        "models": results_models,
        "metadata": {
            "seed": seed,
            "extractor": extractor,
            "data": {
                "kind": data["kind"],
                "options": dict(data.get("options", {})),
                "source": train.source,
                "image_shape": list(train.image_shape),
                "num_classes": train.num_classes,
                "class_names": list(train.class_names),
                "split_sizes": {"train": len(train), "val": len(val), "test": len(test)},
                "per_class": data.get("per_class"),
            },
            "models": {name: dict(spec) for name, spec in models.items()},
            "classifier": dict(classifier),
            "speed": dict(speed),
            "privacy": dict(privacy),
            "robustness_steps": robustness_steps,
            "versions": package_versions(),
            "machine": machine_description(),
            "wall_seconds": time.perf_counter() - started,
            "notes": [
                f"fid_{extractor} uses {extractor} features: it is not comparable to published Inception FID.",
                "Precision and recall compare synthetic images with the real training split.",
                "Privacy compares synthetic images with the generators' actual training members.",
            ],
        },
    }
    write_results(output_dir_path, results)
    save_radar(output_dir_path / "radar.png", radar_scores(results))
    report = render_markdown_report(results, title="medsyn quickstart report", figures={"Radar (paper 000 Fig. 7)": "radar.png"})
    report_path = write_text_atomic(output_dir_path / "report.md", report)
    advance("report")
    overall.close()
    print(f"medsyn: report written to {report_path.resolve()}")
    return report_path
