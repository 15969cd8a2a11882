"""The autograd engine's logit_gap_gradients: every image's d(f_k - f_label)/dx against a per-image brute-force
Jacobian, with and without the column-gradient kernel."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from medsyn.metrics.robustness.autograd_engine import logit_gap_gradients, other_classes


def _model(num_classes: int, in_channels: int) -> nn.Module:
    torch.manual_seed(num_classes)
    return nn.Sequential(
        nn.Conv2d(in_channels, 6, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 8, 3, padding=1),
        nn.Tanh(),  # smooth: a finite-difference check is meaningful
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(8 * 2 * 2, num_classes),
    ).double().eval()


def test_other_classes():
    labels = torch.tensor([0, 3, 1])
    assert other_classes(labels, 4).tolist() == [[1, 2, 3], [0, 1, 2], [0, 2, 3]]
    assert other_classes(torch.tensor([1, 0]), 2).tolist() == [[0], [1]]


@pytest.mark.parametrize(("num_classes", "in_channels"), [(2, 1), (5, 3), (4, 5)])
def test_gap_gradients_equal_per_image_jacobian(num_classes, in_channels):
    model = _model(num_classes, in_channels)
    generator = torch.Generator().manual_seed(1)
    images = torch.rand(6, in_channels, 8, 8, generator=generator, dtype=torch.float64)
    labels = torch.randint(0, num_classes, (6,), generator=generator)
    logits, gaps = logit_gap_gradients(model, images, labels)
    assert logits.shape == (6, num_classes) and gaps.shape == (6, num_classes - 1, in_channels, 8, 8)
    targets = other_classes(labels, num_classes)
    for n in range(6):
        single = images[n : n + 1]
        jacobian = torch.autograd.functional.jacobian(lambda x: model(x)[0], single)[:, 0]  # [K, C, H, W]
        torch.testing.assert_close(logits[n], model(single)[0].detach(), rtol=0, atol=1e-13)
        for j, k in enumerate(targets[n].tolist()):
            torch.testing.assert_close(gaps[n, j], jacobian[k] - jacobian[labels[n]], rtol=1e-10, atol=1e-12)
    assert all(parameter.grad is None for parameter in model.parameters())  # no weight gradients


def test_finite_difference_agrees():
    model = _model(3, 1)
    images = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    labels = torch.tensor([2, 0])
    logits, gaps = logit_gap_gradients(model, images, labels)
    direction = torch.randn(images.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    step = 1e-6
    with torch.no_grad():
        moved = model(images + step * direction)
    rows = torch.arange(2)
    targets = other_classes(labels, 3)
    for j in range(2):
        gap_before = logits[rows, targets[:, j]] - logits[rows, labels]
        gap_after = moved[rows, targets[:, j]] - moved[rows, labels]
        predicted = (gaps[:, j] * direction).flatten(1).sum(1)
        torch.testing.assert_close((gap_after - gap_before) / step, predicted, rtol=1e-4, atol=1e-6)


def test_single_logit_model_is_rejected():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 1)).double()
    with pytest.raises(ValueError, match="at least 2 logits"):
        logit_gap_gradients(model, torch.rand(2, 1, 2, 2, dtype=torch.float64), torch.zeros(2, dtype=torch.int64))
