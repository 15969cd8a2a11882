"""deepfool / adversarial_accuracy refuse what they cannot attack correctly (issue 11 item 7): a model and
images of different dtypes or devices, a one-logit model. (Value tests live in test_deepfool.py.)"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from medsyn.data.image_set import ImageSet
from medsyn.metrics.robustness import adversarial_accuracy, deepfool


def small_model(outputs: int, dtype: torch.dtype = torch.float32) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, outputs)).to(dtype)


def conv_model(outputs: int) -> nn.Module:  # a sequential ReLU CNN: the explicit-gradient engine
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(32, outputs))


class OneLogit(nn.Module):  # not an nn.Sequential: the autograd engine
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(16, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))


@pytest.mark.parametrize("model", [small_model(1), conv_model(1), OneLogit()], ids=["linear", "cnn", "module"])
def test_one_logit_model_is_refused_with_a_clear_error(model):
    # before: the sequential engine crashed with AttributeError ('NoneType' object has no attribute 'flatten')
    images = torch.rand(4, 1, 4, 4)
    with pytest.raises(ValueError, match=r"at least 2 logits .* outputs 1"):
        deepfool(model, images)
    with pytest.raises(ValueError, match="at least 2 logits"):
        deepfool(model, images, torch.zeros(4, dtype=torch.int64))


@pytest.mark.parametrize(
    "model_dtype, image_dtype",
    [(torch.float32, torch.float64), (torch.float64, torch.float32), (torch.float32, torch.float16)],
)
def test_model_and_image_dtypes_must_match_and_both_are_named(model_dtype, image_dtype):
    model = small_model(3, model_dtype)
    images = torch.rand(4, 1, 4, 4).to(image_dtype)
    with pytest.raises(ValueError, match=rf"model parameters are {model_dtype} but images are {image_dtype}"):
        deepfool(model, images)


def test_model_and_image_devices_must_match_and_both_are_named():
    model = small_model(3).to("meta")  # a second device without a GPU
    images = torch.rand(4, 1, 4, 4)
    with pytest.raises(ValueError, match="model parameters are on meta but images are on cpu"):
        deepfool(model, images)


def test_matching_dtype_still_attacks_and_leaves_the_inputs_unchanged():
    model = small_model(3, torch.float64)
    images = torch.rand(6, 1, 4, 4, dtype=torch.float64)
    before = images.clone()
    adversarial = deepfool(model, images, steps=2)
    assert torch.equal(images, before)
    assert adversarial.dtype == torch.float64 and not torch.equal(adversarial, images)


def test_adversarial_accuracy_converts_images_to_the_attacked_precision():
    # adversarial_accuracy owns the conversion (dtype=): a float32 model on float32 test images runs in float64
    model = small_model(3)
    generator = torch.Generator().manual_seed(1)
    images, labels = torch.rand(12, 1, 4, 4, generator=generator), torch.randint(0, 3, (12,), generator=generator)
    test = ImageSet(images, labels, ("a", "b", "c"))
    value = adversarial_accuracy(model, test, steps=2)
    assert 0.0 <= value <= 1.0
    assert next(model.parameters()).dtype == torch.float32  # the caller's model is untouched
