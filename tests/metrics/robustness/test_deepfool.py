"""Batched DeepFool against torchattacks.DeepFool (the reference) and the closed form on linear models."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from medsyn.data.digits import load_digits_images
from medsyn.data.image_set import ImageSet
from medsyn.metrics.robustness import adversarial_accuracy, deepfool
from medsyn.models.classifier_training import evaluate_classifier, train_classifier


@pytest.fixture(scope="module")
def digits_model():
    digits = load_digits_images(size=32)
    order = torch.randperm(len(digits), generator=torch.Generator().manual_seed(1))
    train, val, test = (
        digits.subset(order[:400]),
        digits.subset(order[400:500]),
        digits.subset(order[500:564]),
    )
    model, _ = train_classifier(train, val, arch="small_cnn", epochs=2, batch_size=32, lr=3e-3, seed=0)
    return model, test


def _accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    with torch.no_grad():
        return (model(images).argmax(1) == labels).double().mean().item()


def _float64_deepfool_with_margins(model64: nn.Module, images: torch.Tensor, labels: torch.Tensor, steps: int):
    """The textbook DeepFool loop (torchattacks' semantics) in float64, one image at a time, with the
    margin of every decision it takes, so a test can tell the images rounding cannot move from the rest.

    Returns (final images [N,C,H,W] float64, path margins [N], final margins [N]):
    - path margin: the smallest, over the loop, of the relative logit margin of "still correctly
      classified?" (|f_label - max_other| / max(1, max|f|)) and of the relative gap between the nearest
      and the second-nearest linearised boundary; these decisions fix the whole trajectory;
    - final margin: the final image's relative top-1 / top-2 logit margin (fixes its predicted class).
    A run in another precision or summation order takes the same decisions wherever the margins are far
    above its rounding (float32: ~1e-6 relative after a network's worth of operations).
    """
    finals, path_margins, final_margins = [], [], []
    for image, label in zip(images.double(), labels.tolist()):
        x, smallest = image.clone(), float("inf")
        for _ in range(steps):
            xr = x[None].clone().requires_grad_(True)
            logits = model64(xr)[0]
            others = [k for k in range(len(logits)) if k != label]
            margin = (logits[label] - logits[others].max()).item()
            smallest = min(smallest, abs(margin) / max(1.0, logits.abs().max().item()))
            if margin < 0:
                break
            gaps = logits[others] - logits[label]
            grads = torch.stack([torch.autograd.grad(g, xr, retain_graph=True)[0][0] for g in gaps])
            norms = grads.flatten(1).norm(dim=1)
            distances = (gaps.abs() / norms).detach()
            nearest, second = distances.sort().values[:2].tolist()
            smallest = min(smallest, (second - nearest) / max(nearest, 1e-300))
            step = distances.argmin()
            x = (x + 1.02 * gaps[step].abs() / norms[step] ** 2 * grads[step]).clamp(0, 1).detach()
        with torch.no_grad():
            top2 = model64(x[None])[0].topk(2).values
        finals.append(x)
        path_margins.append(smallest)
        final_margins.append((top2[0] - top2[1]).item() / max(1.0, top2.abs().max().item()))
    as_tensor = lambda values: torch.tensor(values, dtype=torch.float64)
    return torch.stack(finals), as_tensor(path_margins), as_tensor(final_margins)


def _assert_agrees_where_decidable(model, ours, reference, exact, images, path_margins, final_margins, bound):
    """Images whose trajectory no rounding can change agree with torchattacks and the float64 loop; those
    whose final class no rounding can change are predicted alike. Returns the decidable-path mask."""
    on_path = path_margins > bound
    perturbation = (exact - images.double()).flatten(1).abs().amax(1)
    for other in (reference, exact):
        difference = (ours.double() - other.double()).flatten(1).abs().amax(1)
        # 1e-3 of the step: far above rounding (observed <= 3e-6), far below a wrong step formula
        # (an overshoot of 0 instead of 0.02 would be 2e-2 of it).
        assert bool((difference <= 1e-6 + 1e-3 * perturbation)[on_path].all())
    settled = on_path & (final_margins > bound)
    with torch.no_grad():
        ours_class, reference_class = model(ours).argmax(1), model(reference).argmax(1)
    assert torch.equal(ours_class[settled], reference_class[settled])
    return on_path


@pytest.mark.parametrize("steps", [1, 5])
def test_matches_torchattacks_in_float64(digits_model, steps):
    torchattacks = pytest.importorskip("torchattacks")
    model, test = digits_model
    model64 = _double_copy(model)
    images, labels = test.images.double(), test.labels
    assert _accuracy(model64, images, labels) > 0.6  # a model worth attacking
    ours = deepfool(model64, images, labels, steps=steps, overshoot=0.02, num_classes=10)
    reference = torchattacks.DeepFool(model64, steps=steps, overshoot=0.02)(images, labels)
    exact, path_margins, final_margins = _float64_deepfool_with_margins(model64, images, labels, steps)
    # float64 rounds at ~1e-15: only decisions within 1e-9 of a tie may go either way.
    on_path = _assert_agrees_where_decidable(
        model64, ours, reference, exact, images, path_margins, final_margins, bound=1e-9
    )
    assert on_path.double().mean() >= 0.8
    if steps == 5:
        assert _accuracy(model64, ours, labels) < _accuracy(model64, images, labels) - 0.05  # it does something


@pytest.mark.parametrize("steps", [1, 5])
def test_matches_torchattacks_in_float32(digits_model, steps):
    """float32: batched and single-image convolutions round differently (and differently on Intel and AMD,
    and with the OpenMP thread count). After a few clamped steps many images sit within ~1e-6 logits of a
    boundary, where that rounding picks the class; so the comparison covers exactly the images whose
    decisions clear a bound 100x above float32 rounding, and one step gives most images such a path."""
    torchattacks = pytest.importorskip("torchattacks")
    model, test = digits_model
    images, labels = test.images, test.labels
    ours = deepfool(model, images, labels, steps=steps)
    reference = torchattacks.DeepFool(model, steps=steps, overshoot=0.02)(images, labels)
    exact, path_margins, final_margins = _float64_deepfool_with_margins(_double_copy(model), images, labels, steps)
    on_path = _assert_agrees_where_decidable(
        model, ours, reference, exact, images, path_margins, final_margins, bound=1e-4
    )
    attacked = (exact != images.double()).flatten(1).any(1)
    if steps == 1:  # the step formula itself is compared on most attacked images (66% of all here)
        assert (on_path & attacked).double().mean() >= 0.4
    else:
        assert bool(on_path.any())


def _double_copy(model: nn.Module) -> nn.Module:
    import copy

    return copy.deepcopy(model).double().eval()


def _linear_deepfool_numpy(weight, bias, image, label, steps, overshoot):
    """DeepFool on f(x) = W x + b, float64 numpy, one image, the textbook loop (no clamping)."""
    x = image.copy()
    for _ in range(steps):
        logits = weight @ x + bias
        if logits.argmax() != label:
            break
        best = None
        for k in range(len(bias)):
            if k == label:
                continue
            w_gap, f_gap = weight[k] - weight[label], logits[k] - logits[label]
            distance = abs(f_gap) / np.linalg.norm(w_gap)
            if best is None or distance < best[0]:
                best = (distance, f_gap, w_gap)
        _, f_gap, w_gap = best
        x = x + (1 + overshoot) * abs(f_gap) / np.dot(w_gap, w_gap) * w_gap
    return x


def test_linear_model_closed_form():
    generator = torch.Generator().manual_seed(0)
    count, classes, shape = 40, 5, (2, 3, 3)
    model = nn.Sequential(nn.Flatten(), nn.Linear(18, classes)).double()
    with torch.no_grad():
        model[1].weight.copy_(torch.randn(classes, 18, generator=generator, dtype=torch.float64))
        model[1].bias.copy_(torch.randn(classes, generator=generator, dtype=torch.float64))
    images = torch.randn(count, *shape, generator=generator, dtype=torch.float64)
    labels = torch.randint(0, classes, (count,), generator=generator)
    ours = deepfool(model, images, labels, steps=3, overshoot=0.02, clamp=None, batch_size=7)
    weight, bias = model[1].weight.detach().numpy(), model[1].bias.detach().numpy()
    for index in range(count):
        expected = _linear_deepfool_numpy(
            weight, bias, images[index].flatten().numpy(), int(labels[index]), 3, 0.02
        )
        np.testing.assert_allclose(ours[index].flatten().numpy(), expected, atol=1e-10)
    # On a linear model one step with overshoot crosses the nearest boundary of every correct image.
    assert _accuracy(model, ours, labels) == 0.0


def test_misclassified_images_are_untouched_and_labels_default_to_predictions(digits_model):
    model, test = digits_model
    images = test.images[:32]
    with torch.no_grad():
        predictions = model(images).argmax(1)
    wrong_labels = (predictions + 1) % 10
    assert torch.equal(deepfool(model, images, wrong_labels), images)
    by_prediction = deepfool(model, images)  # labels=None: attack the model's own predictions
    assert torch.equal(by_prediction, deepfool(model, images, predictions))
    assert not torch.equal(by_prediction, images)
    assert by_prediction.min() >= 0 and by_prediction.max() <= 1  # clamped like torchattacks


def test_batch_size_does_not_change_the_result(digits_model):
    model, test = digits_model
    model64 = _double_copy(model)
    images = test.images[:48].double()
    whole = deepfool(model64, images, test.labels[:48], batch_size=256)
    pieces = deepfool(model64, images, test.labels[:48], batch_size=5)
    assert torch.allclose(whole, pieces, atol=1e-10)


def test_adversarial_accuracy_precision_and_model_mode(digits_model):
    model, test = digits_model
    weights = [p.clone() for p in model.parameters()]
    model.train()
    robust = adversarial_accuracy(model, test, steps=5)  # float64 by default, on a copy of the model
    assert model.training  # restored
    assert all(p.dtype == torch.float32 and torch.equal(p, w) for p, w in zip(model.parameters(), weights))
    model.eval()
    clean = evaluate_classifier(model, test)["accuracy"]
    assert 0.0 <= robust < clean
    model64 = _double_copy(model)
    images64 = test.images.double()
    expected64 = _accuracy(model64, deepfool(model64, images64, test.labels, steps=5), test.labels)
    assert robust == pytest.approx(expected64, abs=1e-12)
    robust32 = adversarial_accuracy(model, test, steps=5, dtype=torch.float32)
    expected32 = _accuracy(model, deepfool(model, test.images, test.labels, steps=5), test.labels)
    assert robust32 == pytest.approx(expected32, abs=1e-12)
    with pytest.raises(ValueError, match="dtype"):
        adversarial_accuracy(model, test, dtype=torch.float16)


def test_bad_input(digits_model):
    model, test = digits_model
    images, labels = test.images[:4], test.labels[:4]
    cases = [
        ({"images": images.clone().fill_(float("nan"))}, "images contains NaN"),
        ({"images": images[0]}, r"images must be a float tensor \[N,C,H,W\]"),
        ({"images": images * 2}, "clamp"),
        ({"labels": labels[:3]}, "labels must be an integer tensor"),
        ({"labels": labels + 10}, r"labels must lie in \[0, 10\)"),
        ({"steps": 0}, "steps"),
        ({"num_classes": 3}, "num_classes=3 but the model outputs 10"),
        ({"overshoot": -1.0}, "overshoot"),
        ({"clamp": (1.0, 0.0)}, "clamp"),
    ]
    for override, match in cases:
        arguments = {"images": images, "labels": labels, **override}
        with pytest.raises(ValueError, match=match):
            deepfool(model, arguments.pop("images"), arguments.pop("labels"), **arguments)
    with pytest.raises(ValueError, match=r"test .* is empty"):
        adversarial_accuracy(model, ImageSet(images[:0], labels[:0], test.class_names))
