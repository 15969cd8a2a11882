"""One assessment from parsed config sections to the results document (schema 2; ``medsyn.report.results``).

    results, figures = assess(Path("runs/x"), data=data, synthetic_sets=sets, seeds=[0, 1, 2],
                              protocol=protocol, spaces=spaces, workflow="assessment", progress=True)

- The real split is drawn ONCE (``data["split_seed"]``) and shared by every seed and set, so a generator's
  training members are the same real images for every seed (the privacy measures need this).
- Every input check (data, synthetic folders, generator configs, checkpoints, weights files, queries) runs
  before the first byte is written; the split manifest is that first byte.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from medsyn.data.image_set import ImageSet
from medsyn.evaluation.feature_spaces import DOMAIN_EXTRACTOR, FeatureSpaces
from medsyn.evaluation.protocol import Protocol, RealData
from medsyn.evaluation.seed_loop import run_seeds
from medsyn.evaluation.stage_costs import StageCosts
from medsyn.evaluation.synthetic_labels import first_per_class_index
from medsyn.evaluation.synthetic_sources import prepare_sources
from medsyn.evaluation.utility_regimes import check_utility_inputs

__all__ = ["assess", "limit_per_class"]


def assess(output: Path, *, data: Mapping[str, Any], synthetic_sets: Mapping[str, Mapping[str, Any]],
           seeds: Sequence[int], protocol: Protocol, spaces: FeatureSpaces, workflow: str,
           config: Mapping[str, Any], progress: bool) -> tuple[dict[str, Any], dict[str, str]]:
    """data: a parsed [data] section (kind, options, per_class, split_seed and optionally val_per_class /
    test_per_class); synthetic_sets: parsed specs; config: the parsed sections, recorded in metadata.
    Returns (results document, figure title -> path relative to ``output``)."""
    from medsyn.data.sources import draw_splits
    from medsyn.data.split import save_split_manifest
    from medsyn.metrics.privacy import minority_class_queries
    from medsyn.report.results import SCHEMA_VERSION
    from medsyn.report.run_metadata import machine_description, package_versions

    started = time.perf_counter()
    costs = StageCosts()
    with costs.stage("real data (read, split)"):
        splits, split_manifest = draw_splits(data["kind"], dict(data["options"]), seed=data["split_seed"],
                                             per_class=data["per_class"])
    train = splits["train"]
    val = limit_per_class(splits["val"], data.get("val_per_class"), "data.val_per_class")
    test = limit_per_class(splits["test"], data.get("test_per_class"), "data.test_per_class")
    check_utility_inputs(train, val, test, None, regimes=protocol.baseline_regimes or ("baseline_real",),
                         classifier=protocol.classifier)
    with costs.stage("synthetic sets (read, store)"):
        sources = prepare_sources(synthetic_sets, train, protocol.max_multiplier)
    for source in sources:
        if source.fixed is not None and protocol.synthetic_regimes:
            check_utility_inputs(train, val, test, source.fixed, regimes=protocol.synthetic_regimes,
                                 multipliers=protocol.multipliers, classifier=protocol.classifier)
    if protocol.epsilon is not None:
        minority_class_queries(train.labels, protocol.epsilon["n_queries"], seed=0,  # too many queries -> now
                               query_class=protocol.epsilon["query_class"], source=train.source)
    output.mkdir(parents=True, exist_ok=True)
    save_split_manifest(split_manifest, output / "split_manifest.json")  # the first byte written

    with costs.stage("features") as work:
        real = RealData.prepare(train, val, test, spaces, protocol)
        work.add(sum(len(rows) for kind in (real.train_features, real.holdout_features) for rows in kind.values()))
    sets, figures = run_seeds(real, sources, protocol, seeds, output=output, progress=progress, costs=costs)
    extractors = spaces.describe()
    if protocol.domain:
        extractors[DOMAIN_EXTRACTOR] = {
            "description": "penultimate layer of the seed's Baseline Real classifier "
                           f"({protocol.classifier['arch']}, trained on the real training split only)"}
    results = {
        "schema_version": SCHEMA_VERSION,
        "workflow": workflow,
        "synthetic_sets": sets,
        "metadata": {
            "seeds": list(seeds),
            "n_seeds": len(seeds),
            "versions": package_versions(),
            "machine": machine_description(),
            "extractors": extractors,
            "config": {**config, "synthetic_sets": {s.name: s.spec for s in sources}},
            "data": _describe_data(data, train, val, test),
            "protocol": describe_protocol(protocol, spaces),
            "wall_seconds": time.perf_counter() - started,
            "costs": costs.as_metadata(),
        },
    }
    return results, figures


def limit_per_class(split: ImageSet, per_class: int | None, name: str) -> ImageSet:
    """The first ``per_class`` images of each class of ``split`` (all when None): a quick-run option only,
    the papers evaluate on the whole validation and test splits."""
    if per_class is None:
        return split
    if isinstance(per_class, bool) or not isinstance(per_class, int) or per_class < 1:
        raise ValueError(f"{name} must be a positive integer or null, got {per_class!r}")
    return split.subset(first_per_class_index(split.labels, [per_class] * split.num_classes))


def _describe_data(data: Mapping[str, Any], train: ImageSet, val: ImageSet, test: ImageSet) -> dict[str, Any]:
    return {"kind": data["kind"], "options": dict(data["options"]), "per_class": data["per_class"],
            "source": train.source, "image_shape": list(train.image_shape), "num_classes": train.num_classes,
            "class_names": list(train.class_names),
            "split_sizes": {"train": len(train), "val": len(val), "test": len(test)},
            "train_class_counts": train.class_counts()}


def describe_classifier(classifier: Mapping[str, Any]) -> str:
    """The classifier's training values in words, each marked as the arch's paper default or an override:
    "classifier cnn4 (Adam, cross-entropy): batch_size 32, lr 0.001, epochs 30 (paper 000 App. A (Corn))"."""
    from medsyn.models.classifiers import classifier_hyperparameters

    paper = classifier_hyperparameters(classifier["arch"])
    values = []
    for key in ("batch_size", "lr", "epochs"):
        value = classifier.get(key) if classifier.get(key) is not None else getattr(paper, key)
        values.append(f"{key} {value:g}" + ("" if value == getattr(paper, key) else f" (override; default {getattr(paper, key):g})"))
    described = f"classifier {classifier['arch']} (Adam, cross-entropy): {', '.join(values)} ({paper.source} unless overridden)"
    geometric = classifier.get("geometric_da")
    if geometric:
        described += (f"; Geometric DA: rotation uniform in ±{geometric['max_rotation_degrees']:g} degrees, horizontal "
                      f"flip p {geometric['hflip_probability']:g}, vertical flip p {geometric['vflip_probability']:g}")
    return described


def describe_protocol(protocol: Protocol, spaces: FeatureSpaces) -> dict[str, str]:
    """What each section of the results means, in words, for the report and metadata."""
    described = {
        "utility": "accuracy (top-1)" + (f", top-{protocol.classifier['top_k']} accuracy"
                                          if protocol.classifier.get("top_k", 1) > 1 else "")
                   + " and macro F1 on the real test split; best "
                   "epoch by real validation loss; baselines use no synthetic images: keyed '0x' and repeated "
                   "under every multiplier, shared by every synthetic set; " + describe_classifier(protocol.classifier),
        "fidelity": f"{', '.join(protocol.fidelity_metrics)} (k={protocol.prdc_k}) of the 1x synthetic subset "
                    "against the real training split",
        "split": "one split (data.split_seed) shared by every seed; generators retrained per seed",
        "statistics": "mean and Student-t 90% CI over seeds",
    }
    if protocol.robustness is not None:
        described["robustness"] = (f"adversarial accuracy on DeepFool ({protocol.robustness['steps']} steps) "
                                   "perturbed real test images")
    if protocol.ssim is not None:
        described["privacy"] = ("references are the generator's training members (real train)"
                                + ("; DCR holdout = real test" if protocol.dcr else "")
                                + f"; SSIM-max q={protocol.ssim['q']}, l={protocol.ssim['repeats']}")
    return described
