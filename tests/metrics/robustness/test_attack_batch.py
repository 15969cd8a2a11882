"""adversarial_accuracy's default batch: 256 images unless their per-class gradients would pass
ATTACK_GRADIENT_BYTES; the test set is attacked one batch at a time with the batches deepfool forms."""

from __future__ import annotations

import torch
from torch import nn

from medsyn.data.image_set import ImageSet
from medsyn.metrics.robustness import attack
from medsyn.metrics.robustness.attack import ATTACK_GRADIENT_BYTES, adversarial_accuracy, attack_batch_size


def test_the_default_batch_bounds_the_gradient_memory():
    assert attack_batch_size(10, (1, 32, 32), torch.float64) == 256  # digits: unchanged
    per_image = 8 * 3 * 256 * 256 * 8  # Kvasir-like RGB 256 px, 8 classes, float64
    assert attack_batch_size(8, (3, 256, 256), torch.float64) == ATTACK_GRADIENT_BYTES // per_image == 42
    assert attack_batch_size(8, (3, 256, 256), torch.float32) == 85
    assert attack_batch_size(1000, (3, 4096, 4096), torch.float64) == 1  # never 0


def test_blocks_of_the_default_batch_give_what_one_call_of_that_batch_gives(monkeypatch):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 6 * 6, 4))
    test = ImageSet(torch.rand(23, 3, 6, 6), torch.randint(0, 4, (23,)), ("a", "b", "c", "d"))
    sizes = []
    real_deepfool = attack.deepfool
    monkeypatch.setattr(attack, "deepfool", lambda m, images, *a, **k: sizes.append(len(images)) or
                        real_deepfool(m, images, *a, **k))
    monkeypatch.setattr(attack, "ATTACK_GRADIENT_BYTES", 4 * 108 * 8 * 5)  # 5 images a batch
    blocked = adversarial_accuracy(model, test, steps=3)
    assert sizes == [5, 5, 5, 5, 3]
    assert blocked == adversarial_accuracy(model, test, steps=3, batch_size=5)
