"""The engine switch: resolve_engine's choices, the errors of a bad or impossible engine, and that "auto" runs
what DeepFool ran before the switch existed (the sequential engine where usable, else autograd with the
column-gradient kernel)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import medsyn.metrics.robustness.column_gradient as column_gradient
from medsyn.data.image_set import ImageSet
from medsyn.metrics.robustness import ENGINES, adversarial_accuracy, deepfool, policy, resolve_engine
from medsyn.models.classifiers import VGG16Classifier, build_classifier


class Wrapper(nn.Module):  # a model whose forward() is code, not a layer list
    def __init__(self, channels: int = 1) -> None:
        super().__init__()
        self.body = build_classifier("small_cnn", num_classes=4, image_shape=(channels, 16, 16))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def _batchnorm_cnn() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(1024, 4))


def _images(dtype=torch.float32, count: int = 12, channels: int = 1) -> torch.Tensor:
    return torch.rand(count, channels, 16, 16, generator=torch.Generator().manual_seed(0)).to(dtype)


@pytest.mark.parametrize("arch", ["small_cnn", "cnn3", "cnn4"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_auto_picks_sequential_for_medsyn_cnns_on_the_cpu(arch, dtype):
    torch.manual_seed(0)
    model = build_classifier(arch, num_classes=4, image_shape=(1, 16, 16)).to(dtype)
    assert resolve_engine(model, _images(dtype), "auto") == "sequential"
    assert resolve_engine(model.train(), _images(dtype), "auto") == "sequential"  # deepfool attacks in eval mode
    assert resolve_engine(model, _images(dtype), "autograd") == "autograd"
    assert resolve_engine(model, _images(dtype), "sequential") == "sequential"
    assert resolve_engine(model, _images(dtype)) == "sequential"  # "auto" is the default


def test_auto_picks_sequential_for_the_vgg16_classifier():
    model = VGG16Classifier(num_classes=3, in_channels=1, classifier_width=8)
    assert resolve_engine(model, torch.rand(1, 1, 32, 32)) == "sequential"


@pytest.mark.parametrize(
    ("model", "dtype", "reason"),
    [
        (Wrapper(), torch.float32, r"nn.Sequential of supported layers, and the model is a Wrapper"),
        (_batchnorm_cnn(), torch.float32, r"layer 1 .*BatchNorm2d.* is not a layer the engine supports"),
        (build_classifier("small_cnn", num_classes=4, image_shape=(1, 16, 16)).bfloat16(), torch.bfloat16,
         "float32 or float64, and the images are torch.bfloat16"),
    ],
    ids=["not-sequential", "batchnorm", "bfloat16"],
)
def test_auto_falls_back_to_autograd_and_sequential_says_why(model, dtype, reason):
    images = _images(dtype)
    assert resolve_engine(model, images, "auto") == "autograd"
    with pytest.raises(ValueError, match=rf"engine='sequential' cannot attack this model: .*{reason}"):
        resolve_engine(model, images, "sequential")
    with pytest.raises(ValueError, match=rf"engine='sequential' cannot attack this model: .*{reason}"):
        deepfool(model, images, engine="sequential")


def test_sequential_refuses_a_model_off_the_cpu():
    with torch.device("meta"):  # a second device without a GPU
        model = build_classifier("small_cnn", num_classes=4, image_shape=(1, 16, 16))
        images = torch.empty(2, 1, 16, 16)
    assert resolve_engine(model, images, "auto") == "autograd"
    with pytest.raises(ValueError, match="engine='sequential' .* CPU only .* the model is on meta"):
        resolve_engine(model, images, "sequential")


@pytest.mark.parametrize("engine", ["fast", "Auto", None, 1])
def test_unknown_engine_lists_the_choices(engine):
    model = build_classifier("small_cnn", num_classes=4, image_shape=(1, 16, 16))
    images = _images()
    match = r"engine must be one of 'auto', 'autograd', 'sequential', got"
    with pytest.raises(ValueError, match=match):
        resolve_engine(model, images, engine)
    with pytest.raises(ValueError, match=match):
        deepfool(model, images, engine=engine)
    with pytest.raises(ValueError, match=match):
        adversarial_accuracy(model, ImageSet(images, torch.zeros(12, dtype=torch.int64), tuple("abcd")), engine=engine)
    assert ENGINES == ("auto", "autograd", "sequential")


def _count_column_gradients(monkeypatch) -> list:
    calls = []
    original = column_gradient.column_input_gradient

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(column_gradient, "column_input_gradient", counting)
    return calls


def test_auto_on_a_sequential_model_is_the_sequential_engine_bit_for_bit():
    torch.manual_seed(1)
    for dtype in (torch.float32, torch.float64):
        model = build_classifier("small_cnn", num_classes=4, image_shape=(1, 16, 16)).to(dtype).eval()
        images = _images(dtype, count=24)
        auto = deepfool(model, images, steps=3)
        assert torch.equal(auto, deepfool(model, images, steps=3, engine="sequential"))
        assert not torch.equal(auto, images)
        # the reference agrees to rounding (float64: the path decisions are far from ties here)
        if dtype == torch.float64:
            torch.testing.assert_close(auto, deepfool(model, images, steps=3, engine="autograd"), rtol=0, atol=1e-12)


def test_auto_on_other_models_is_autograd_with_the_column_kernel_and_autograd_is_plain(monkeypatch):
    torch.manual_seed(2)
    model = Wrapper().eval()
    images = _images(count=16)
    calls = _count_column_gradients(monkeypatch)
    plain = deepfool(model, images, steps=2, engine="autograd")
    assert calls == []  # the reference takes no kernel
    auto = deepfool(model, images, steps=2)
    assert calls  # float32, one input channel: policy.column_gradient_pays
    torch.testing.assert_close(auto, plain, rtol=0, atol=1e-5)
    model64, images64 = Wrapper().double().eval(), images.double()
    calls.clear()
    auto64 = deepfool(model64, images64, steps=2)
    assert calls == [] and torch.equal(auto64, deepfool(model64, images64, steps=2, engine="autograd"))


def test_adversarial_accuracy_passes_the_engine_on():
    torch.manual_seed(3)
    model = build_classifier("small_cnn", num_classes=4, image_shape=(1, 16, 16)).eval()
    images = _images(count=24)
    with torch.no_grad():
        labels = model(images).argmax(1)  # every image correctly classified: all are attacked
    test = ImageSet(images, labels, tuple("abcd"))
    values = {engine: adversarial_accuracy(model, test, steps=3, engine=engine) for engine in ENGINES}
    assert values["auto"] == values["sequential"] == values["autograd"]  # float64: no near ties here
    assert values["auto"] < 1.0
    with pytest.raises(ValueError, match="engine='sequential' cannot attack this model"):
        adversarial_accuracy(Wrapper(), test, engine="sequential")


def test_policy_predicates_follow_their_thresholds():
    image = torch.empty(1, 3, 8, 8)
    weight = torch.empty(4, 3, 3, 3)
    assert policy.column_gradient_pays(image, weight)
    assert not policy.column_gradient_pays(image.double(), weight.double())  # float64: torch's was faster
    assert not policy.column_gradient_pays(torch.empty(1, 4, 8, 8), torch.empty(4, 4, 3, 3))  # > 3 channels
    assert not policy.column_gradient_pays(image, weight, padding="same")
    assert not policy.column_gradient_pays(image, weight.clone().requires_grad_(True))
    assert policy.direct_conv_pays(image, weight) and policy.direct_conv_pays(image.double(), weight.double())
    assert not policy.direct_conv_pays(torch.empty(1, 8, 8, 8), torch.empty(4, 8, 3, 3))  # oneDNN keeps it
    grey, wide = nn.Conv2d(1, 8, 3, padding=1), nn.Conv2d(16, 8, 3, padding=1)
    assert policy.sparse_block_pays(wide)
    assert not policy.sparse_block_pays(grey)  # float32 image-facing: the column gradient instead
    assert policy.sparse_block_pays(grey.double())
    assert not policy.sparse_block_pays(nn.Conv2d(16, 8, 3, stride=2))
    assert policy.is_plain_2x2_pool(nn.MaxPool2d(2)) and not policy.is_plain_2x2_pool(nn.MaxPool2d(2, ceil_mode=True))
