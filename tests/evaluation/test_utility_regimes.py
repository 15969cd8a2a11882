"""Utility regimes (paper 000 §4.1.4): training-set composition, input checks before training, end to end."""

from __future__ import annotations

import json

import pytest
import torch

from medsyn.data.digits import load_digits_images
from medsyn.data.image_set import ImageSet
from medsyn.evaluation import utility_regimes as utility
from medsyn.evaluation.synthetic_labels import images_needed
from medsyn.evaluation.utility_regimes import (
    REGIMES,
    build_regime_training_set,
    check_utility_inputs,
    run_utility,
)


def _toy(counts: list[int], *, offset: float = 0.0, source: str = "toy", shape=(1, 8, 8)) -> ImageSet:
    """Images whose first pixel encodes (offset + running index) so that selections can be traced."""
    labels = torch.cat([torch.full((n,), c, dtype=torch.int64) for c, n in enumerate(counts)])
    # interleave classes so that "first per class" differs from "first overall"
    labels = labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))]
    images = torch.zeros(len(labels), *shape)
    images[:, 0, 0, 0] = (offset + torch.arange(len(labels))) / 1000
    return ImageSet(images, labels, ("a", "b", "c"), source)


def test_regime_compositions():
    real = _toy([4, 2, 3], source="real")
    synthetic = _toy([15, 6, 9], offset=500, source="gen")
    assert images_needed(real.class_counts(), 2) == [8, 4, 6]

    for regime, augment in (("baseline_real", False), ("geometric_da", True)):
        data, flag = build_regime_training_set(regime, 0, real, None)
        assert data is real and flag is augment

    for multiplier in (1, 2, 3):
        only, flag = build_regime_training_set("data_anonymization", multiplier, real, synthetic)
        assert not flag and only.class_counts() == [multiplier * n for n in real.class_counts()]
        assert (only.images[:, 0, 0, 0] >= 0.5).all()  # synthetic only
        for c in range(3):  # the FIRST images of each class, in order
            expected = synthetic.images[synthetic.labels == c][: multiplier * real.class_counts()[c]]
            assert torch.equal(only.images[only.labels == c], expected)
        both, flag = build_regime_training_set("synthetic_da", multiplier, real, synthetic)
        assert not flag and len(both) == (1 + multiplier) * len(real)
        assert torch.equal(both.images[: len(real)], real.images)
        assert both.class_counts() == [(1 + multiplier) * n for n in real.class_counts()]
        combined, flag = build_regime_training_set("combined_da", multiplier, real, synthetic)
        assert (
            flag and torch.equal(combined.images, both.images) and torch.equal(combined.labels, both.labels)
        )

    one = build_regime_training_set("data_anonymization", 1, real, synthetic)[0]
    three = build_regime_training_set("data_anonymization", 3, real, synthetic)[0]
    assert set(one.images[:, 0, 0, 0].tolist()) <= set(three.images[:, 0, 0, 0].tolist())  # 1x inside 3x


def test_too_few_synthetic_images_says_how_many():
    real = _toy([4, 2, 3])
    synthetic = _toy([12, 5, 9], source="gen")
    build_regime_training_set("synthetic_da", 2, real, synthetic)  # enough for 2x
    with pytest.raises(ValueError, match=r"needs 27 images .*class 'b': 5 < 6 = 3 x 2"):
        build_regime_training_set("synthetic_da", 3, real, synthetic)


@pytest.mark.parametrize(
    "regime, multiplier, synthetic, match",
    [
        ("baseline_real", 1, None, "multiplier must be 0"),
        ("synthetic_da", 0, "ok", "multiplier >= 1"),
        ("mixup", 1, "ok", "unknown regime 'mixup'"),
        ("data_anonymization", 1, None, "needs synthetic images"),
        ("data_anonymization", 1, "rgb", r"\(C,H,W\)=\(3, 8, 8\)"),
        ("data_anonymization", 1, "size", r"\(C,H,W\)=\(1, 16, 16\)"),
        ("data_anonymization", 1, "classes", r"labels unknown to the data set: \['z'\]"),
    ],
)
def test_bad_regime_input(regime, multiplier, synthetic, match):
    real = _toy([4, 2, 3])
    candidates = {
        None: None,
        "ok": _toy([12, 6, 9]),
        "rgb": _toy([12, 6, 9], shape=(3, 8, 8)),
        "size": _toy([12, 6, 9], shape=(1, 16, 16)),
        "classes": ImageSet(torch.zeros(3, 1, 8, 8), torch.tensor([0, 1, 2]), ("a", "b", "z")),
    }
    with pytest.raises(ValueError, match=match):
        build_regime_training_set(regime, multiplier, real, candidates[synthetic])


@pytest.fixture(scope="module")
def digits_splits():
    """Real train / val / test and a 'perfect generator': other real digits, 3x the train size per class."""
    digits = load_digits_images(size=16)  # 16x16 keeps the eight trainings below fast
    order = torch.randperm(len(digits), generator=torch.Generator().manual_seed(0))
    train, val, test = (
        digits.subset(order[:150]),
        digits.subset(order[150:300]),
        digits.subset(order[300:500]),
    )
    pool = digits.subset(order[500:])
    needed = images_needed(train.class_counts(), 3)
    chosen = torch.cat([torch.nonzero(pool.labels == c).flatten()[:n] for c, n in enumerate(needed)])
    synthetic = pool.subset(chosen)
    return (
        train,
        val,
        test,
        ImageSet(synthetic.images, synthetic.labels, synthetic.class_names, "held-out digits"),
    )


def test_checks_fail_before_any_training(digits_splits, monkeypatch):
    train, val, test, synthetic = digits_splits

    def no_training(*args, **kwargs):
        raise AssertionError("a classifier was trained before the inputs were checked")

    monkeypatch.setattr(utility, "train_classifier", no_training)
    small = synthetic.subset(range(len(synthetic) // 2))
    wrong_channels = ImageSet(
        synthetic.images.repeat(1, 3, 1, 1), synthetic.labels, synthetic.class_names, "rgb"
    )
    cases = [
        ({"synthetic": small}, r"needs 450 images"),
        ({"synthetic": wrong_channels}, r"synthetic \(rgb\) has images of \(C,H,W\)=\(3, 16, 16\)"),
        ({"synthetic": None}, "need synthetic images"),
        ({"val": test}, "val and test hold the same images"),
        (
            {"classifier": {"arch": "cnn4", "epochs": 1}},
            None,
        ),  # 16x16 is enough for cnn4: must pass the checks
        ({"classifier": {"arch": "vgg16"}}, "needs H and W >= 32"),
        ({"classifier": {"arch": "cnn4", "optimizer": "sgd"}}, "unknown key"),
        ({"classifier": {"top_k": 11}}, "top_k"),
        ({"regimes": ["baseline_real", "baseline_real"]}, "duplicates"),
        ({"multipliers": [1, 0]}, "positive integers"),
        ({"robustness_engine": "fast"}, r"engine must be one of 'auto', 'autograd', 'sequential', got 'fast'"),
    ]
    for override, match in cases:
        arguments = {"train": train, "val": val, "test": test, "synthetic": synthetic, **override}
        if match is None:
            check_utility_inputs(**arguments)
            continue
        with pytest.raises(ValueError, match=match):
            run_utility(**arguments)


def test_run_utility_end_to_end(digits_splits):
    train, val, test, synthetic = digits_splits
    shuffled = ImageSet(
        synthetic.images,
        synthetic.labels[torch.randperm(len(synthetic), generator=torch.Generator().manual_seed(1))],
        synthetic.class_names,
        "label noise",
    )
    classifier = {"arch": "small_cnn", "epochs": 4, "batch_size": 16, "lr": 1e-2}
    results, models = run_utility(
        train, val, test, synthetic, multipliers=[1], classifier=classifier, seed=0, robustness_steps=2
    )
    assert list(results) == list(REGIMES)
    assert set(results["baseline_real"]) == {"0x"} and set(results["combined_da"]) == {"1x"}
    json.dumps(results)
    for regime, by_multiplier in results.items():
        for key, entry in by_multiplier.items():
            assert 0 <= entry["adversarial_accuracy"] <= entry["accuracy"] <= 1
            assert 0 <= entry["macro_f1"] <= 1
            assert models[regime][key] is not None
    assert results["synthetic_da"]["1x"]["train_size"] == 2 * len(train)
    assert results["data_anonymization"]["1x"]["train_size"] == len(train)
    assert results["geometric_da"]["0x"]["augment"] and not results["baseline_real"]["0x"]["augment"]
    # A perfect "generator" (held-out real digits) gives useful classifiers, and 3x more of it helps.
    assert results["baseline_real"]["0x"]["accuracy"] > 0.7
    assert results["data_anonymization"]["1x"]["accuracy"] > 0.6
    more, _ = run_utility(
        train,
        val,
        test,
        synthetic,
        regimes=["data_anonymization"],
        multipliers=[3],
        classifier=classifier,
        seed=0,
        robustness_steps=None,
    )
    assert more["data_anonymization"]["3x"]["train_size"] == 3 * len(train)
    assert more["data_anonymization"]["3x"]["accuracy"] > results["data_anonymization"]["1x"]["accuracy"]
    # Synthetic images with random labels are useless on their own.
    noisy, _ = run_utility(
        train,
        val,
        test,
        shuffled,
        regimes=["data_anonymization"],
        multipliers=[1],
        classifier=classifier,
        seed=0,
        robustness_steps=None,
    )
    assert noisy["data_anonymization"]["1x"]["accuracy"] < 0.3
    assert "adversarial_accuracy" not in noisy["data_anonymization"]["1x"]


def test_top_k_adds_top3_scores_beside_the_top1_ones(digits_splits):
    from medsyn.metrics.robustness import adversarial_accuracies
    from medsyn.models.classifier_training import evaluate_classifier

    train, val, test, synthetic = digits_splits
    classifier = {"arch": "small_cnn", "epochs": 2, "batch_size": 16, "lr": 1e-2}
    top1, _ = run_utility(train, val, test, None, regimes=["baseline_real"], classifier=classifier, seed=0,
                          robustness_steps=2)
    top3, models = run_utility(train, val, test, None, regimes=["baseline_real"],
                               classifier={**classifier, "top_k": 3}, seed=0, robustness_steps=2)
    plain, entry = top1["baseline_real"]["0x"], top3["baseline_real"]["0x"]
    assert "top3_accuracy" not in plain and "top3_adversarial_accuracy" not in plain
    # accuracy stays top-1 (the same classifier, the same numbers); the top-3 ones sit beside it
    assert (entry["accuracy"], entry["adversarial_accuracy"]) == (plain["accuracy"], plain["adversarial_accuracy"])
    assert entry["top_k"] == 3
    model = models["baseline_real"]["0x"]
    assert entry["top3_accuracy"] == evaluate_classifier(model, test, top_k=3)["top3_accuracy"]
    assert entry["top3_adversarial_accuracy"] == adversarial_accuracies(model, test, steps=2, top_ks=(3,))[3]
    assert entry["accuracy"] <= entry["top3_accuracy"] and entry["adversarial_accuracy"] < entry["top3_adversarial_accuracy"]


def test_geometric_da_ranges_reach_the_classifier(digits_splits, monkeypatch):
    train, val, test, _ = digits_splits
    seen = []
    original = utility.train_classifier

    def recording(*args, **kwargs):
        seen.append((kwargs["augment"], kwargs.get("geometric_da")))
        return original(*args, **kwargs)

    monkeypatch.setattr(utility, "train_classifier", recording)
    ranges = {"max_rotation_degrees": 5.0, "hflip_probability": 0.0, "vflip_probability": 0.0}
    run_utility(train, val, test, None, regimes=["baseline_real", "geometric_da"], seed=0, robustness_steps=None,
                classifier={"arch": "small_cnn", "epochs": 1, "geometric_da": ranges})
    assert seen == [(False, ranges), (True, ranges)]
