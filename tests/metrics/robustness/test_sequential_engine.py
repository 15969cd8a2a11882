"""The sequential engine: SequentialGapGradients (explicit batched backward) against the autograd engine's
logit_gap_gradients and a per-image Jacobian; the compiled kernels against torch; Tape.select; what it refuses."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import medsyn.metrics.robustness.sequential_engine as sequential_engine
from medsyn.kernels.dispatch import cpu_kernels
from medsyn.metrics.robustness import deepfool, policy
from medsyn.metrics.robustness.autograd_engine import logit_gap_gradients, other_classes
from medsyn.metrics.robustness.sequential_engine import SequentialGapGradients


def _double(model: nn.Module, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    for module in model.modules():  # re-initialise deterministically
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
    return model.double().eval()


MODELS = {
    # the block of medsyn's classifiers: conv, fused ReLU + 2x2 pool, odd sizes (15 -> 7), FC head
    "plain_cnn": lambda c, k: nn.Sequential(
        nn.Conv2d(c, 4, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, 2),
        nn.Flatten(), nn.Linear(6 * 3 * 3, 8), nn.ReLU(), nn.Dropout(0.3), nn.Linear(8, k),
    ),
    # standalone pools and ReLU, strides, dilation, no bias, nested Sequential, non-dividing adaptive pool
    "mixed": lambda c, k: nn.Sequential(
        nn.Conv2d(c, 5, 3, stride=2, padding=1, bias=False),
        nn.MaxPool2d(3, stride=2, padding=1),  # overlapping windows, no ReLU before it
        nn.Sequential(nn.Conv2d(5, 6, 2, dilation=2, padding=2), nn.ReLU(), nn.Identity()),
        nn.AdaptiveAvgPool2d(3),  # 5x5 -> 3x3: overlapping windows (autograd probe path)
        nn.Flatten(),
        nn.Linear(6 * 9, k),
    ),
    # conv -> ReLU -> 2x2 pool blocks with the sparse compiled backward (8/16/32/64 input channels, 3x3,
    # paddings 0-2, a 3x3 convolution output whose last row and column get no gradient)
    "fast_blocks": lambda c, k: nn.Sequential(
        nn.Conv2d(c, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 7 -> 7 -> 3
        nn.Conv2d(16, 32, 3, padding=2), nn.ReLU(), nn.MaxPool2d(2),  # 3 -> 5 -> 2
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 2 -> 2 -> 1
        nn.Flatten(), nn.Linear(64, k),
    ),
    "fast_blocks_no_padding": lambda c, k: nn.Sequential(
        nn.Conv2d(c, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 8, 3), nn.ReLU(inplace=True), nn.MaxPool2d(2),  # 7 -> 5 -> 2
        nn.Flatten(), nn.Linear(8 * 4, k),
    ),
    # dividing adaptive pool (explicit path), a ReLU + pool that is not 2x2 (two separate layers)
    "small_cnn_like": lambda c, k: nn.Sequential(
        nn.Conv2d(c, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, stride=1),
        nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(6 * 4, k),
    ),
}


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize(("in_channels", "num_classes"), [(1, 4), (3, 2), (5, 3)])
def test_gap_gradients_equal_autograd(name, in_channels, num_classes):
    model = _double(MODELS[name](in_channels, num_classes))
    generator = torch.Generator().manual_seed(1)
    images = torch.rand(7, in_channels, 15, 15, generator=generator, dtype=torch.float64)
    images[0] = 0.5  # a constant image: ties in every pooling window
    images[1, :, :8, :8] = 0.0
    labels = torch.randint(0, num_classes, (7,), generator=generator)
    plan = SequentialGapGradients.from_model(model)
    logits, tape = plan.forward(images)
    with torch.no_grad():  # the model's own logits (float64 convolutions: the direct loop, another sum order)
        torch.testing.assert_close(logits, model(images), rtol=1e-13, atol=1e-13)
    gaps = plan.gap_gradients(tape, labels, num_classes)
    reference_logits, reference = logit_gap_gradients(model, images, labels)
    assert gaps.shape == reference.shape == (7, num_classes - 1, in_channels, 15, 15)
    torch.testing.assert_close(gaps, reference, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(logits, reference_logits, rtol=1e-13, atol=1e-13)


def test_fast_blocks_use_the_sparse_kernel():
    plan = SequentialGapGradients.from_model(_double(MODELS["fast_blocks"](5, 3)))  # 5 input channels: not fast
    kinds = [type(layer).__name__ for layer in plan.layers]
    assert kinds.count("_ConvReluMaxPool2x2") == 3 and kinds[:2] == ["_Conv2d", "_ReluMaxPool2x2"]
    for grey_or_rgb in (1, 3):  # image-facing 3x3 layers have their own unrolled kernel, used in float64
        plan = SequentialGapGradients.from_model(_double(MODELS["fast_blocks"](grey_or_rgb, 3)))
        assert [type(layer).__name__ for layer in plan.layers].count("_ConvReluMaxPool2x2") == 4
        plan = SequentialGapGradients.from_model(_double(MODELS["fast_blocks"](grey_or_rgb, 3)).float())
        assert [type(layer).__name__ for layer in plan.layers].count("_ConvReluMaxPool2x2") == 3


def test_gap_gradients_equal_per_image_jacobian():
    model = _double(MODELS["plain_cnn"](1, 3))
    images = torch.rand(3, 1, 12, 12, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    labels = torch.tensor([2, 0, 1])
    plan = SequentialGapGradients.from_model(model)
    gaps = plan.gap_gradients(plan.forward(images)[1], labels, 3)
    for n, targets in enumerate(other_classes(labels, 3).tolist()):
        jacobian = torch.autograd.functional.jacobian(lambda x: model(x)[0], images[n : n + 1])[:, 0]
        for j, k in enumerate(targets):
            torch.testing.assert_close(gaps[n, j], jacobian[k] - jacobian[labels[n]], rtol=1e-10, atol=1e-12)


def test_float32_equals_autograd():
    model = MODELS["plain_cnn"](1, 5)
    _double(model)
    model = model.float()
    images = torch.rand(16, 1, 15, 15, generator=torch.Generator().manual_seed(3))
    labels = torch.arange(16) % 5
    plan = SequentialGapGradients.from_model(model)
    gaps = plan.gap_gradients(plan.forward(images)[1], labels, 5)
    torch.testing.assert_close(gaps, logit_gap_gradients(model, images, labels)[1], rtol=1e-5, atol=1e-6)


def test_tape_select_equals_a_fresh_forward_of_the_subset():
    model = _double(MODELS["plain_cnn"](1, 4))
    images = torch.rand(6, 1, 12, 12, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    labels = torch.tensor([0, 1, 2, 3, 0, 1])
    plan = SequentialGapGradients.from_model(model)
    keep = torch.tensor([True, False, True, True, False, True])
    _, tape = plan.forward(images)
    selected = plan.gap_gradients(tape.select(keep), labels[keep], 4)
    fresh = plan.gap_gradients(plan.forward(images[keep])[1], labels[keep], 4)
    assert torch.equal(selected, fresh)


def test_seed_groups_do_not_change_the_result(monkeypatch):
    model = _double(MODELS["mixed"](2, 6))
    images = torch.rand(5, 2, 15, 15, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    labels = torch.tensor([5, 0, 3, 3, 1])
    plan = SequentialGapGradients.from_model(model)
    _, tape = plan.forward(images)
    together = plan.gap_gradients(tape, labels, 6)
    monkeypatch.setattr(policy, "SEED_BATCH_BYTES", 1)  # one seed at a time
    assert plan._seed_group(tape, 5) == 1
    torch.testing.assert_close(plan.gap_gradients(tape, labels, 6), together, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize(
    ("model", "reason"),
    [
        (nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(2 * 6 * 6, 3)),
         r"BatchNorm2d.*is not a layer the engine supports"),
        (nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, padding_mode="reflect"), nn.Flatten(), nn.Linear(128, 3)),
         "padding_mode='reflect'"),
        (nn.Sequential(nn.Conv2d(1, 2, 3, padding="same"), nn.Flatten(), nn.Linear(128, 3)), "padding='same'"),
        (nn.Sequential(nn.Conv2d(1, 2, 3), nn.Tanh(), nn.Flatten(), nn.Linear(72, 3)), "Tanh"),
        (nn.Sequential(nn.Flatten(start_dim=2), nn.Linear(64, 3)), "Flatten"),
        (nn.Sequential(nn.Flatten(), nn.Sequential(nn.Linear(64, 3), nn.Softmax(dim=1))), "Softmax"),  # nested
    ],
    ids=["batchnorm", "reflect-padding", "same-padding", "tanh", "partial-flatten", "nested-softmax"],
)
def test_unsupported_layers_are_refused_with_the_reason(model, reason):
    model.eval()
    assert policy.sequential_unusable_reason(model, torch.rand(2, 1, 8, 8)) is not None
    with pytest.raises(ValueError, match=reason):
        SequentialGapGradients.from_model(model)


def test_training_mode_and_non_sequential_models_are_refused():
    model = MODELS["plain_cnn"](1, 3)
    with pytest.raises(ValueError, match="eval mode"):
        SequentialGapGradients.from_model(model.train())

    class Wrapper(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = MODELS["plain_cnn"](1, 3)

        def forward(self, x):
            return self.body(x)

    with pytest.raises(ValueError, match=r"nn.Sequential .* the model is a Wrapper"):
        SequentialGapGradients.from_model(Wrapper().eval())


def test_deepfool_with_both_engines_agrees():
    model = _double(MODELS["plain_cnn"](1, 4), seed=6)
    images = torch.rand(40, 1, 14, 14, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    with torch.no_grad():
        labels = model(images).argmax(1)
    labels[:10] = (labels[:10] + 1) % 4  # some images misclassified from the start: left untouched
    sequential = deepfool(model, images, labels, steps=5, batch_size=16, engine="sequential")
    autograd = deepfool(model, images, labels, steps=5, batch_size=16, engine="autograd")
    torch.testing.assert_close(sequential, autograd, rtol=0, atol=1e-12)
    assert torch.equal(sequential[:10][labels[:10] != model(images[:10]).argmax(1)],
                       images[:10][labels[:10] != model(images[:10]).argmax(1)])
    assert not torch.equal(sequential[10:], images[10:])


# ------------------------------------------------------------------ the compiled kernel through Python


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_max_pool_kernel_equals_torch(dtype):
    kernels = cpu_kernels()
    generator = np.random.default_rng(7)
    x = (generator.integers(-2, 4, size=(2, 3, 9, 20)) * 0.25).astype(dtype)  # ties, zeros, odd height
    pooled, code = kernels.relu_max_pool2x2(x.reshape(6, 9, 20))
    source = torch.from_numpy(x).requires_grad_(True)
    reference = torch.nn.functional.max_pool2d(torch.relu(source), 2)
    assert np.array_equal(pooled.reshape(reference.shape), reference.detach().numpy())
    grad = generator.standard_normal((2, 6, 4, 10)).astype(dtype)
    grad_input = kernels.relu_max_pool2x2_backward(grad, code, 9, 20)
    for s in range(2):
        (expected,) = torch.autograd.grad(reference, source, torch.from_numpy(grad[s]).view_as(reference), retain_graph=True)
        assert np.array_equal(grad_input[s].reshape(expected.shape), expected.numpy())


def test_relu_max_pool_kernel_rejects_bad_input():
    kernels = cpu_kernels()
    x = np.zeros((2, 4, 4), np.float32)
    with pytest.raises(ValueError, match=r"\[planes, H, W\]"):
        kernels.relu_max_pool2x2(np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match="H, W >= 2"):
        kernels.relu_max_pool2x2(np.zeros((2, 1, 4), np.float32))
    with pytest.raises(TypeError):  # no silent conversion of other dtypes
        kernels.relu_max_pool2x2(np.zeros((2, 4, 4), np.int32))
    _, code = kernels.relu_max_pool2x2(x)
    with pytest.raises(ValueError, match="do not match"):
        kernels.relu_max_pool2x2_backward(np.zeros((1, 2, 2, 3), np.float32), code, 4, 4)
    with pytest.raises(ValueError, match="do not match"):
        kernels.relu_max_pool2x2_backward(np.zeros((1, 2, 2, 2), np.float32), code, 6, 4)


def test_relu_max_pool_backward_writes_into_out():
    kernels = cpu_kernels()
    x = np.random.default_rng(8).standard_normal((3, 6, 5)).astype(np.float32)
    _, code = kernels.relu_max_pool2x2(x)
    grad = np.random.default_rng(9).standard_normal((2, 3, 3, 2)).astype(np.float32)
    out = np.full((2, 3, 6, 5), 7.0, np.float32)  # stale values must all be overwritten
    returned = kernels.relu_max_pool2x2_backward(grad, code, 6, 5, out=out)
    assert np.shares_memory(returned, out)
    assert np.array_equal(out, kernels.relu_max_pool2x2_backward(grad, code, 6, 5))
    with pytest.raises(ValueError, match="out must be"):
        kernels.relu_max_pool2x2_backward(grad, code, 6, 5, out=np.zeros((2, 3, 6, 6), np.float32))
    with pytest.raises(TypeError):  # another dtype is not converted
        kernels.relu_max_pool2x2_backward(grad, code, 6, 5, out=np.zeros((2, 3, 6, 5), np.float64))
    shared = np.zeros(2 * 3 * 6 * 5, np.float32)
    with pytest.raises(ValueError, match="overlap"):
        kernels.relu_max_pool2x2_backward(shared[: grad.size].reshape(grad.shape), code, 6, 5,
                                          out=shared.reshape(2, 3, 6, 5))


def test_vgg16_classifier_is_one_sequential_the_engine_reads():
    from medsyn.models.classifiers import VGG16Classifier

    torch.manual_seed(9)
    model = VGG16Classifier(num_classes=3, in_channels=1, classifier_width=16).double().eval()
    images = torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    labels = torch.tensor([1, 2])
    plan = SequentialGapGradients.from_model(model)
    fused = (sequential_engine._ReluMaxPool2x2, sequential_engine._ConvReluMaxPool2x2)
    assert sum(isinstance(layer, fused) for layer in plan.layers) == 5
    logits, tape = plan.forward(images)
    with torch.no_grad():
        torch.testing.assert_close(logits, model(images), rtol=1e-13, atol=1e-13)
    reference = logit_gap_gradients(model, images, labels)[1]
    torch.testing.assert_close(plan.gap_gradients(tape, labels, 3), reference, rtol=1e-10, atol=1e-13)
    with pytest.raises(ValueError, match="eval mode"):
        SequentialGapGradients.from_model(model.train())


def test_without_the_compiled_module_relu_and_pool_stay_separate(monkeypatch):
    monkeypatch.setattr(policy, "has_cpu_kernels", lambda: False)
    model = _double(MODELS["plain_cnn"](1, 4))
    plan = SequentialGapGradients.from_model(model)
    assert not any(isinstance(layer, sequential_engine._ReluMaxPool2x2) for layer in plan.layers)
    assert not any(layer._direct for layer in plan.layers if isinstance(layer, sequential_engine._Conv2d))
    images = torch.rand(4, 1, 15, 15, generator=torch.Generator().manual_seed(10), dtype=torch.float64)
    labels = torch.tensor([3, 2, 1, 0])
    gaps = plan.gap_gradients(plan.forward(images)[1], labels, 4)
    torch.testing.assert_close(gaps, logit_gap_gradients(model, images, labels)[1], rtol=1e-12, atol=1e-14)


def test_conv_pool_backward_kernel_rejects_bad_input():
    kernels = cpu_kernels()
    grad = np.zeros((2, 3, 4, 2, 2), np.float32)
    code = np.zeros((3, 4, 2, 2), np.uint8)
    weight = np.zeros((4, 3, 3, 8), np.float32)  # [C_out, kh, kw, C_in]
    out = kernels.conv_relu_max_pool2x2_backward(grad, code, weight, 4, 4, 1, 1)
    assert out.shape == (2, 3, 8, 4, 4)
    with pytest.raises(ValueError, match="does not match the weights"):
        kernels.conv_relu_max_pool2x2_backward(grad, code, weight, 6, 4, 1, 1)
    with pytest.raises(ValueError, match="code"):
        kernels.conv_relu_max_pool2x2_backward(grad, code[:2], weight, 4, 4, 1, 1)
    with pytest.raises(ValueError, match="at least 2 x 2"):
        kernels.conv_relu_max_pool2x2_backward(grad, code, weight, 1, 1, 0, 0)
    with pytest.raises(ValueError, match="out must be"):
        kernels.conv_relu_max_pool2x2_backward(grad, code, weight, 4, 4, 1, 1, out=np.zeros((2, 3, 8, 4, 5), np.float32))
    with pytest.raises(TypeError):  # mixed dtypes are not converted
        kernels.conv_relu_max_pool2x2_backward(grad, code, weight.astype(np.float64), 4, 4, 1, 1)
    assert kernels.conv_relu_max_pool2x2_backward_is_fast(16, 3, 3)
    assert kernels.conv_relu_max_pool2x2_backward_is_fast(1, 3, 3)
    assert not kernels.conv_relu_max_pool2x2_backward_is_fast(5, 3, 3)
    assert not kernels.conv_relu_max_pool2x2_backward_is_fast(16, 5, 5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    ("in_channels", "out_channels", "size", "kernel", "padding"),
    [(1, 16, (32, 32), (3, 3), (1, 1)), (16, 32, (16, 16), (3, 3), (1, 1)), (5, 7, (9, 21), (3, 3), (0, 2)),
     (3, 6, (8, 8), (5, 3), (2, 1)), (32, 3, (7, 40), (1, 1), (0, 0))],
)
def test_direct_convolution_equals_torch(dtype, in_channels, out_channels, size, kernel, padding):
    generator = np.random.default_rng(12)
    x = generator.standard_normal((3, in_channels, *size)).astype(dtype)
    weight = generator.standard_normal((out_channels, in_channels, *kernel)).astype(dtype)
    bias = generator.standard_normal(out_channels).astype(dtype)
    expected = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(weight), torch.from_numpy(bias),
                                          padding=padding)
    got = cpu_kernels().conv2d_direct(x, weight, bias, *padding)
    tolerance = 1e-12 if dtype == np.float64 else 1e-4
    torch.testing.assert_close(torch.from_numpy(got), expected, rtol=tolerance, atol=tolerance)
    no_bias = cpu_kernels().conv2d_direct(x, weight, None, *padding)
    torch.testing.assert_close(torch.from_numpy(no_bias), expected - torch.from_numpy(bias)[:, None, None],
                               rtol=tolerance, atol=tolerance)


def test_direct_convolution_rejects_bad_input():
    kernels = cpu_kernels()
    x, weight = np.zeros((2, 3, 5, 5)), np.zeros((4, 3, 3, 3))
    with pytest.raises(ValueError, match="C_in"):
        kernels.conv2d_direct(x, np.zeros((4, 2, 3, 3)), None, 1, 1)
    with pytest.raises(ValueError, match="empty"):
        kernels.conv2d_direct(x, np.zeros((4, 3, 7, 7)), None, 0, 0)
    with pytest.raises(ValueError, match="bias"):
        kernels.conv2d_direct(x, weight, np.zeros(3), 1, 1)
    with pytest.raises(TypeError):  # mixed dtypes are not converted
        kernels.conv2d_direct(x, weight.astype(np.float32), None, 1, 1)


def test_direct_convolution_writes_into_out():
    kernels = cpu_kernels()
    generator = np.random.default_rng(13)
    x, weight = generator.standard_normal((2, 3, 6, 7)), generator.standard_normal((5, 3, 3, 3))
    out = np.full((2, 5, 6, 7), 7.0)
    returned = kernels.conv2d_direct(x, weight, None, 1, 1, out=out)
    assert np.shares_memory(returned, out)
    assert np.array_equal(out, kernels.conv2d_direct(x, weight, None, 1, 1))
    with pytest.raises(ValueError, match="out must be"):
        kernels.conv2d_direct(x, weight, None, 1, 1, out=np.zeros((2, 5, 6, 6)))
    with pytest.raises(ValueError, match="overlap"):  # writing into its own input
        kernels.conv2d_direct(x, np.ascontiguousarray(weight[:3]), None, 1, 1, out=x)
