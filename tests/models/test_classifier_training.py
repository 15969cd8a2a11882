"""Classifier training (best epoch by validation loss), geometric augmentation and evaluation metrics."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.ndimage
import sklearn.metrics
import torch
import torch.nn.functional as F
from torch import nn

from medsyn.data.digits import load_digits_images
from medsyn.data.image_set import ImageSet
from medsyn.models.classifier_training import (
    evaluate_classifier,
    macro_f1_score,
    predict_logits,
    train_classifier,
)
from medsyn.models.geometric_augmentation import GeometricAugmentation, geometric_augment


@pytest.fixture(scope="module")
def digits_splits():
    digits = load_digits_images(size=32)
    order = torch.randperm(len(digits), generator=torch.Generator().manual_seed(0))
    return digits.subset(order[:500]), digits.subset(order[500:700]), digits.subset(order[700:1000])


@pytest.fixture(scope="module")
def trained(digits_splits):
    train, val, _ = digits_splits
    return train_classifier(train, val, arch="small_cnn", epochs=4, batch_size=32, lr=3e-3, seed=0)


def test_learns_digits_and_keeps_best_validation_epoch(digits_splits, trained):
    train, val, test = digits_splits
    model, history = trained
    scores = evaluate_classifier(model, test)
    assert scores["accuracy"] > 0.7  # chance is 0.1
    val_losses = [epoch["val_loss"] for epoch in history["per_epoch"]]
    assert len(val_losses) == 4
    assert history["best_epoch"] == int(np.argmin(val_losses)) + 1
    # The returned weights are the best epoch's: their validation loss is the recorded minimum.
    val_loss = F.cross_entropy(predict_logits(model, val.images), val.labels).item()
    assert val_loss == pytest.approx(min(val_losses), rel=1e-5)
    assert history["train_size"] == len(train) and history["lr"] == 3e-3
    json.dumps(history)  # plain data


def test_best_epoch_is_not_simply_the_last(digits_splits):
    train, val, _ = digits_splits
    # 40 training images and a high learning rate: the model overfits and validation loss rises at the end.
    model, history = train_classifier(
        train.subset(range(40)), val, arch="small_cnn", epochs=12, batch_size=8, lr=1e-2, seed=0
    )
    val_losses = [epoch["val_loss"] for epoch in history["per_epoch"]]
    assert history["best_epoch"] == int(np.argmin(val_losses)) + 1
    assert history["best_epoch"] < 12, "set-up no longer overfits; the test would not tell best from last"
    val_loss = F.cross_entropy(predict_logits(model, val.images), val.labels).item()
    assert val_loss == pytest.approx(min(val_losses), rel=1e-5)
    assert val_loss < val_losses[-1]


def test_seeded_training_is_reproducible(digits_splits):
    train, val, _ = digits_splits
    small_train = train.subset(range(120))
    runs = [
        train_classifier(small_train, val, arch="cnn3", epochs=1, seed=s, augment=True)[0] for s in (4, 4, 5)
    ]
    same = all(torch.equal(p, q) for p, q in zip(runs[0].parameters(), runs[1].parameters()))
    different = any(not torch.equal(p, q) for p, q in zip(runs[0].parameters(), runs[2].parameters()))
    assert same and different


def test_training_does_not_touch_global_rng(digits_splits):
    train, val, _ = digits_splits
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    train_classifier(train.subset(range(64)), val, arch="small_cnn", epochs=1, seed=0)
    assert torch.equal(torch.rand(3), expected)


def _smooth_test_image() -> torch.Tensor:
    image = np.zeros((33, 33), dtype=np.float32)
    image[5:12, 14:20] = 1.0
    image[14:20, 20:28] = 0.5
    return torch.from_numpy(scipy.ndimage.gaussian_filter(image, 1.5)).view(1, 1, 33, 33)


def test_rotation_matches_scipy():
    only_rotation = GeometricAugmentation(max_rotation_degrees=40.0, hflip_probability=0.0, vflip_probability=0.0)
    image = _smooth_test_image()
    rotated = geometric_augment(image.repeat(6, 1, 1, 1), torch.Generator().manual_seed(5), only_rotation)
    # The angles are the generator's first draws, uniform in [-40, 40] degrees.
    angles = (torch.rand(6, generator=torch.Generator().manual_seed(5)) * 2 - 1) * 40
    for index, angle in enumerate(angles.tolist()):
        reference = scipy.ndimage.rotate(image[0, 0].double().numpy(), angle, reshape=False, order=1)
        # borders differ only in how each library pads; compare the interior
        np.testing.assert_allclose(rotated[index, 0, 4:-4, 4:-4].numpy(), reference[4:-4, 4:-4], atol=2e-3)


def test_flips_are_exact_and_all_occur():
    image = torch.rand(1, 2, 8, 8)
    batch = geometric_augment(image.repeat(64, 1, 1, 1), torch.Generator().manual_seed(0),
                              GeometricAugmentation(max_rotation_degrees=0.0))
    candidates = [image[0], image[0].flip(-1), image[0].flip(-2), image[0].flip(-1, -2)]
    seen = set()
    for augmented in batch:
        matches = [i for i, c in enumerate(candidates) if torch.allclose(augmented, c, atol=1e-5)]
        assert len(matches) == 1
        seen.add(matches[0])
    assert seen == {0, 1, 2, 3}


def test_augmentation_is_seeded_and_stays_in_range():
    images = torch.rand(16, 1, 32, 32)
    a = geometric_augment(images, torch.Generator().manual_seed(9))
    b = geometric_augment(images, torch.Generator().manual_seed(9))
    c = geometric_augment(images, torch.Generator().manual_seed(10))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.min() >= 0 and a.max() <= 1 and a.shape == images.shape


class FixedLogits(nn.Module):
    """A 'model' whose logits are given (rows in input order), to test the metrics alone."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.logits = nn.Parameter(logits, requires_grad=False)
        self.position = 0

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        out = self.logits[self.position : self.position + len(images)]
        self.position += len(images)
        return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_match_sklearn(seed):
    generator = torch.Generator().manual_seed(seed)
    count, classes = 300, 6
    labels = torch.randint(0, classes - 1, (count,), generator=generator)  # class 5 never a true label
    logits = torch.randn(count, classes, generator=generator)
    logits[:, 4] -= 10  # class 4 is (almost) never predicted
    test = ImageSet(torch.zeros(count, 1, 4, 4), labels, tuple("abcdef"))
    for top_k in (1, 3):
        scores = evaluate_classifier(FixedLogits(logits), test, top_k=top_k)
        expected = sklearn.metrics.top_k_accuracy_score(
            labels.numpy(), logits.numpy(), k=top_k, labels=range(6)
        )
        key = "accuracy" if top_k == 1 else f"top{top_k}_accuracy"
        assert scores[key] == pytest.approx(expected, abs=1e-12)
        assert scores["accuracy"] == pytest.approx((logits.argmax(1) == labels).double().mean().item(), abs=1e-12)
        predictions = logits.argmax(1).numpy()
        assert scores["macro_f1"] == pytest.approx(
            sklearn.metrics.f1_score(labels.numpy(), predictions, average="macro", zero_division=0), abs=1e-12
        )


def test_macro_f1_edge_cases():
    perfect = torch.tensor([0, 1, 2, 2])
    assert macro_f1_score(perfect, perfect) == 1.0
    wrong = torch.tensor([1, 1, 1, 1])
    expected = sklearn.metrics.f1_score(perfect.numpy(), wrong.numpy(), average="macro", zero_division=0)
    assert macro_f1_score(perfect, wrong) == pytest.approx(expected)


def test_bad_input_fails_before_training(digits_splits):
    train, val, _ = digits_splits
    other_size = ImageSet(
        torch.zeros(4, 1, 16, 16), torch.zeros(4, dtype=torch.int64), train.class_names, "small.npz"
    )
    with pytest.raises(ValueError, match=r"val \(small.npz\) has images of \(C,H,W\)=\(1, 16, 16\)"):
        train_classifier(train, other_size, epochs=1)
    other_classes = ImageSet(val.images, val.labels, tuple(f"c{i}" for i in range(10)), "renamed")
    with pytest.raises(ValueError, match="classes"):
        train_classifier(train, other_classes, epochs=1)
    with pytest.raises(ValueError, match=r"val .* is empty"):
        train_classifier(train, val.subset([]), epochs=1)
    for kwargs, match in [
        ({"epochs": 0}, "epochs"),
        ({"lr": -1.0}, "lr"),
        ({"batch_size": 0}, "batch_size"),
        ({"arch": "nope"}, "unknown classifier arch"),
        ({"seed": -1}, "seed"),
    ]:
        with pytest.raises(ValueError, match=match):
            train_classifier(train, val, **kwargs)
    model = nn.Sequential(nn.Flatten(), nn.Linear(32 * 32, 10))
    with pytest.raises(ValueError, match="top_k"):
        evaluate_classifier(model, val, top_k=11)
    with pytest.raises(ValueError, match=r"3 classes|logits of shape"):
        evaluate_classifier(nn.Sequential(nn.Flatten(), nn.Linear(32 * 32, 3)), val)
