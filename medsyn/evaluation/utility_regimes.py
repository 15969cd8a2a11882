"""Utility (paper 000 §4.1.4) and robustness (§4.1.5) of synthetic images, over the paper's five regimes.

    results, models = run_utility(train, val, test, synthetic, classifier={"arch": "cnn4"}, seed=0)
    results["synthetic_da"]["2x"]   # {"accuracy", "macro_f1", "adversarial_accuracy", "train_size", ...}

Regimes (the classifier's training set; the validation set is always the REAL ``val``, the score always on
the REAL ``test``):

- ``baseline_real``: the real training set.
- ``geometric_da``: the real training set, every batch randomly rotated and flipped on the fly
  (``medsyn.models.geometric_augmentation.geometric_augment``; ranges ``classifier["geometric_da"]``, by default
  a rotation in [-15, 15] degrees and each flip with p 0.5: paper 000 §4.1.4 names the transforms, no range).
- ``data_anonymization``: synthetic images only, ``m`` times the real training size (m = 1, 2, 3).
- ``synthetic_da``: real + ``m`` x synthetic.
- ``combined_da``: real + ``m`` x synthetic, all geometrically augmented.

Results are keyed regime -> multiplier key: ``"1x"``, ``"2x"``, ``"3x"`` for the synthetic regimes and
``"0x"`` (no synthetic image) for the two baselines.

"m x synthetic" keeps the real class distribution: for every class c it takes the FIRST m * n_c synthetic
images of class c (n_c = real training images of class c), so the 1x set is inside the 2x set, which is
inside the 3x set. Too few synthetic images of a class is an error that says how many are needed, raised
with every other input check before any classifier is trained.

Every regime's classifier is trained with the same seed (same initial weights and batch order stream), so
differences between regimes come from the data. Images are never normalised with statistics of any split.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from medsyn.config.sections import MULTIPLIERS
from medsyn.data.image_set import ImageSet, check_same_kind
from medsyn.data.stored_images import StoredImages, image_tensor
from medsyn.evaluation.stage_costs import StageCosts
from medsyn.evaluation.synthetic_labels import first_per_class_index, images_needed
from medsyn.metrics.robustness import DEEPFOOL_STEPS, adversarial_accuracies
from medsyn.metrics.robustness.policy import check_engine
from medsyn.models.classifier_training import evaluate_classifier, top_k_key, train_classifier
from medsyn.models.classifiers import DEFAULT_CLASSIFIER, build_classifier

__all__ = [
    "BASELINE_REGIMES",
    "MULTIPLIERS",
    "REGIMES",
    "SYNTHETIC_REGIMES",
    "build_regime_training_set",
    "check_utility_inputs",
    "multiplier_key",
    "run_utility",
]

REGIMES = ("baseline_real", "geometric_da", "data_anonymization", "synthetic_da", "combined_da")
SYNTHETIC_REGIMES = ("data_anonymization", "synthetic_da", "combined_da")
BASELINE_REGIMES = ("baseline_real", "geometric_da")

# regime -> (uses real images, uses synthetic images, geometric augmentation)
_COMPOSITION = {
    "baseline_real": (True, False, False),
    "geometric_da": (True, False, True),
    "data_anonymization": (False, True, False),
    "synthetic_da": (True, True, False),
    "combined_da": (True, True, True),
}
_CLASSIFIER_KEYS = {"arch", "epochs", "batch_size", "lr", "top_k", "num_workers", "geometric_da"}


def multiplier_key(multiplier: int) -> str:
    """0 -> "0x" (baselines), 1 -> "1x", ..."""
    return f"{multiplier}x"


def _check_regime(regime: str, multiplier: int) -> None:
    if regime not in _COMPOSITION:
        raise ValueError(f"unknown regime {regime!r}; known regimes: {list(REGIMES)}")
    if not isinstance(multiplier, int) or isinstance(multiplier, bool):
        raise ValueError(f"multiplier must be an integer, got {multiplier!r}")
    if regime in SYNTHETIC_REGIMES and multiplier < 1:
        raise ValueError(
            f"regime {regime!r} needs a multiplier >= 1 (synthetic images per real one), got {multiplier}"
        )
    if regime not in SYNTHETIC_REGIMES and multiplier != 0:
        raise ValueError(
            f"regime {regime!r} uses no synthetic images: its multiplier must be 0, got {multiplier}"
        )


def _check_synthetic_count(regime: str, multiplier: int, real_train: ImageSet, synthetic: ImageSet) -> None:
    needed = images_needed(real_train.class_counts(), multiplier)
    available = synthetic.class_counts()
    short = [index for index, (need, have) in enumerate(zip(needed, available)) if have < need]
    if short:
        details = ", ".join(
            f"class {real_train.class_names[i]!r}: {available[i]} < {needed[i]} = "
            f"{multiplier} x {needed[i] // multiplier}"
            for i in short
        )
        raise ValueError(
            f"synthetic ({synthetic.source}) has too few images for regime {regime!r} at "
            f"{multiplier_key(multiplier)}: it needs {sum(needed)} images "
            f"({multiplier} x the {len(real_train)} real training images, per class as in the real set); "
            f"short in {details}"
        )


def build_regime_training_set(
    regime: str, multiplier: int, real_train: ImageSet, synthetic: ImageSet | None
) -> tuple[ImageSet, bool]:
    """The classifier's training set for ``regime`` at ``multiplier`` and whether to augment it on the fly.

    real_train: the real training split. synthetic: labelled synthetic images with the same image shape
    and classes (None only for the baselines). multiplier: 0 for the baselines, >= 1 otherwise.
    """
    if not isinstance(real_train, ImageSet):
        raise ValueError(f"real_train must be an ImageSet, got {type(real_train).__name__}")
    if len(real_train) == 0:
        raise ValueError(f"real_train ({real_train.source}) is empty")
    _check_regime(regime, multiplier)
    uses_real, uses_synthetic, augment = _COMPOSITION[regime]
    if not uses_synthetic:
        return real_train, augment
    if synthetic is None:
        raise ValueError(f"regime {regime!r} needs synthetic images, got synthetic=None")
    check_same_kind(real_train, synthetic, reference_name="the real training set", other_name="synthetic")
    _check_synthetic_count(regime, multiplier, real_train, synthetic)
    chosen = synthetic.subset(first_per_class_index(synthetic.labels, images_needed(real_train.class_counts(), multiplier)))
    if not uses_real:
        return chosen, augment
    if real_train.stored or chosen.stored:  # a view of both: no pixel is copied
        images = StoredImages.concatenate([real_train.images, chosen.images])
    else:
        images = torch.cat([real_train.images, chosen.images])
    combined = ImageSet(
        images=images,
        labels=torch.cat([real_train.labels, chosen.labels]),
        class_names=real_train.class_names,
        source=f"{real_train.source} + {multiplier_key(multiplier)} {synthetic.source}",
    )
    return combined, augment


def _classifier_settings(classifier: Mapping[str, Any] | None) -> dict[str, Any]:
    settings = dict(classifier or {})
    unknown = set(settings) - _CLASSIFIER_KEYS
    if unknown:
        raise ValueError(
            f"classifier has unknown key(s) {sorted(unknown)}; known keys: {sorted(_CLASSIFIER_KEYS)}"
        )
    settings.setdefault("arch", DEFAULT_CLASSIFIER)
    settings.setdefault("top_k", 1)
    return settings


def _plan(regimes: Sequence[str], multipliers: Sequence[int]) -> list[tuple[str, int]]:
    if isinstance(regimes, str) or not regimes:
        raise ValueError(
            f"regimes must be a non-empty list of regime names from {list(REGIMES)}, got {regimes!r}"
        )
    if len(set(regimes)) != len(regimes):
        raise ValueError(f"regimes has duplicates: {list(regimes)}")
    unknown = [regime for regime in regimes if regime not in REGIMES]
    if unknown:
        raise ValueError(f"unknown regime(s) {unknown}; known regimes: {list(REGIMES)}")
    if any(regime in SYNTHETIC_REGIMES for regime in regimes):
        if not multipliers or any(
            not isinstance(m, int) or isinstance(m, bool) or m < 1 for m in multipliers
        ):
            raise ValueError(
                f"multipliers must be a non-empty list of positive integers, got {multipliers!r}"
            )
        if len(set(multipliers)) != len(multipliers):
            raise ValueError(f"multipliers has duplicates: {list(multipliers)}")
    plan = []
    for regime in regimes:
        if regime in SYNTHETIC_REGIMES:
            plan += [(regime, multiplier) for multiplier in multipliers]
        else:
            plan.append((regime, 0))
    return plan


def _same_images(val: ImageSet, test: ImageSet) -> bool:
    """Whether val and test hold the same images (for stored images: the same stored rows)."""
    if val.images.shape != test.images.shape:
        return False
    if val.stored and test.stored:
        return val.images.same_images(test.images)
    return torch.equal(image_tensor(val.images), image_tensor(test.images))


def check_utility_inputs(
    train: ImageSet,
    val: ImageSet,
    test: ImageSet,
    synthetic: ImageSet | None,
    *,
    regimes: Sequence[str] = REGIMES,
    multipliers: Sequence[int] = MULTIPLIERS,
    classifier: Mapping[str, Any] | None = None,
) -> list[tuple[str, int]]:
    """Every check ``run_utility`` needs, done before any training; returns the (regime, multiplier) plan."""
    if not isinstance(train, ImageSet):
        raise ValueError(f"train must be an ImageSet, got {type(train).__name__}")
    for name, split in (("train", train), ("val", val), ("test", test)):
        if name != "train":
            check_same_kind(train, split, reference_name="the real training set", other_name=name)
        if len(split) == 0:
            raise ValueError(f"{name} ({split.source}) is empty")
    if _same_images(val, test):
        raise ValueError(
            "val and test hold the same images: the best epoch must be chosen on real validation "
            "data, never on the test set"
        )
    plan = _plan(regimes, multipliers)
    settings = _classifier_settings(classifier)
    top_k = settings["top_k"]
    if not isinstance(top_k, int) or isinstance(top_k, bool) or not 1 <= top_k <= train.num_classes:
        raise ValueError(f"classifier top_k must be an integer in [1, {train.num_classes}], got {top_k!r}")
    with torch.device("meta"):  # architecture / image-size errors now, without allocating weights
        build_classifier(settings["arch"], num_classes=train.num_classes, image_shape=train.image_shape)
    needs_synthetic = [(regime, m) for regime, m in plan if regime in SYNTHETIC_REGIMES]
    if needs_synthetic:
        if synthetic is None:
            raise ValueError(
                f"regimes {sorted({r for r, _ in needs_synthetic})} need synthetic images, got None"
            )
        check_same_kind(train, synthetic, reference_name="the real training set", other_name="synthetic")
        regime, largest = max(needs_synthetic, key=lambda item: item[1])
        _check_synthetic_count(regime, largest, train, synthetic)
    return plan


def run_utility(
    train: ImageSet,
    val: ImageSet,
    test: ImageSet,
    synthetic: ImageSet | None,
    *,
    regimes: Sequence[str] = REGIMES,
    multipliers: Sequence[int] = MULTIPLIERS,
    classifier: Mapping[str, Any] | None = None,
    seed: int = 0,
    robustness_steps: int | None = DEEPFOOL_STEPS,
    robustness_engine: str = "auto",
    progress: bool = False,
    costs: StageCosts | None = None,
) -> tuple[dict[str, dict[str, dict[str, Any]]], dict[str, dict[str, nn.Module]]]:
    """Train one classifier per (regime, multiplier), score it on the real test set, attack it with DeepFool.

    train, val, test: the REAL splits (val picks the best epoch; test is only scored). synthetic: labelled
    synthetic images (same image shape and classes), or None when only baselines are asked for.
    classifier: {"arch", "epochs", "batch_size", "lr", "top_k", "num_workers", "geometric_da"}; missing keys take
    the arch's paper values (``CLASSIFIER_HYPERPARAMETERS``), arch "small_cnn", top_k 1 and the
    ``GeometricAugmentation`` defaults. robustness_steps: DeepFool steps
    (paper: 5), or None to skip robustness; robustness_engine: the DeepFool engine ("auto", "autograd",
    "sequential"; ``medsyn.metrics.robustness.policy``). costs: where the training and attack times go.
    Returns (results, models): results[regime][multiplier_key] = {"accuracy" (top-1), "macro_f1",
    "adversarial_accuracy" (top-1, when robustness_steps), with top_k > 1 also "top{k}_accuracy" and
    "top{k}_adversarial_accuracy" (paper 000 §5.2: top-3 for CheXpert), "top_k", "train_size", "augment", "best_epoch", "seed"},
    plain JSON data; models[regime][multiplier_key] = the trained classifier (eval mode).
    """
    plan = check_utility_inputs(
        train, val, test, synthetic, regimes=regimes, multipliers=multipliers, classifier=classifier
    )
    if robustness_steps is not None and (not isinstance(robustness_steps, int) or robustness_steps < 1):
        raise ValueError(f"robustness_steps must be a positive integer or None, got {robustness_steps!r}")
    check_engine(robustness_engine)
    costs = costs if costs is not None else StageCosts()
    settings = _classifier_settings(classifier)
    top_k = settings.pop("top_k")
    results: dict[str, dict[str, dict[str, Any]]] = {}
    models: dict[str, dict[str, nn.Module]] = {}
    steps = plan
    if progress:
        from tqdm.auto import tqdm

        steps = tqdm(plan, desc="utility regimes")
    for regime, multiplier in steps:
        training_set, augment = build_regime_training_set(regime, multiplier, train, synthetic)
        with costs.stage("utility: classifier training") as work:
            model, history = train_classifier(training_set, val, seed=seed, augment=augment, progress=False,
                                              **settings)
            scores = evaluate_classifier(model, test, top_k=top_k)
            epochs_run = len(history["per_epoch"])
            work.add((len(training_set) + len(val)) * epochs_run + len(test),
                     "image passes")
        entry: dict[str, Any] = {
            **scores,
            "top_k": top_k,
            "train_size": len(training_set),
            "augment": augment,
            "best_epoch": history["best_epoch"],
            "seed": seed,
        }
        if robustness_steps is not None:
            with costs.stage("robustness: DeepFool") as work:
                work.add(len(test))
                robust = adversarial_accuracies(model, test, steps=robustness_steps, engine=robustness_engine,
                                                top_ks=tuple(dict.fromkeys((1, top_k))))
                entry.update({top_k_key("adversarial_accuracy", k): value for k, value in robust.items()})
            entry["deepfool_steps"] = robustness_steps
        key = multiplier_key(multiplier)
        results.setdefault(regime, {})[key] = entry
        models.setdefault(regime, {})[key] = model
    return results, models
