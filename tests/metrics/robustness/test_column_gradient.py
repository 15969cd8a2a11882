"""column_gradient: the GEMM + col2im input gradient equals torch's own convolution backward (float64, directly;
float32 through column_gradient_kernels(), where it is used); what it takes is policy.column_gradient_pays."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from medsyn.metrics.robustness.column_gradient import column_gradient_kernels, column_input_gradient


def _input_gradient(images, weight, bias, seed, use_kernels, **conv):
    images = images.detach().requires_grad_(True)
    if use_kernels:
        with column_gradient_kernels():
            output = F.conv2d(images, weight, bias, **conv)
    else:
        output = F.conv2d(images, weight, bias, **conv)
    (gradient,) = torch.autograd.grad(output, images, seed(output))
    return output.detach(), gradient, output.grad_fn


@pytest.mark.parametrize(
    ("in_channels", "kernel", "size", "conv"),
    [
        (1, 3, (12, 12), {"padding": 1}),
        (3, 3, (10, 13), {"padding": 1}),
        (1, 5, (11, 9), {"stride": 2, "padding": 2}),  # stride that does not divide the size
        (3, 7, (15, 15), {"stride": 2, "padding": 3}),  # DenseNet's stem geometry
        (2, 3, (9, 10), {"dilation": 2, "padding": (1, 2)}),
        (1, (3, 2), (8, 7), {"stride": (1, 2)}),  # no padding, rectangular kernel
    ],
)
def test_input_gradient_equals_torch_backward(in_channels, kernel, size, conv):
    generator = torch.Generator().manual_seed(0)
    kernel = (kernel, kernel) if isinstance(kernel, int) else kernel
    images = torch.rand(4, in_channels, *size, generator=generator, dtype=torch.float64)
    weight = torch.randn(6, in_channels, *kernel, generator=generator, dtype=torch.float64)
    bias = torch.randn(6, generator=generator, dtype=torch.float64)
    seeds = {}

    def seed(output):  # the same random cotangent for both runs
        if "g" not in seeds:
            seeds["g"] = torch.randn(output.shape, generator=generator, dtype=torch.float64)
        return seeds["g"]

    out_torch, grad_torch, _ = _input_gradient(images, weight, bias, seed, False, **conv)
    grad_fast = column_input_gradient(
        seeds["g"], weight, size, conv.get("stride", 1), conv.get("padding", 0), conv.get("dilation", 1)
    )
    torch.testing.assert_close(grad_fast, grad_torch, rtol=1e-12, atol=1e-12)

    # float32, through the context (the precision it is used in)
    images32, weight32, bias32 = images.float(), weight.float(), bias.float()
    out_torch, grad_torch, _ = _input_gradient(images32, weight32, bias32, lambda o: seeds["g"].float(), False, **conv)
    out_fast, grad_fast, grad_fn = _input_gradient(images32, weight32, bias32, lambda o: seeds["g"].float(), True, **conv)
    assert "Conv2dColumnInputGradient" in type(grad_fn).__name__  # the fast path really ran
    assert torch.equal(out_fast, out_torch)
    torch.testing.assert_close(grad_fast, grad_torch, rtol=1e-5, atol=1e-5)


def test_other_convolutions_go_to_torch_unchanged():
    generator = torch.Generator().manual_seed(1)
    images = torch.rand(2, 4, 8, 8, generator=generator, dtype=torch.float64).requires_grad_(True)
    weight = torch.randn(5, 4, 3, 3, generator=generator, dtype=torch.float64)
    with column_gradient_kernels():
        wide = F.conv2d(images.float(), weight.float(), padding=1)  # 4 input channels
        same = F.conv2d(images[:, :1].float(), weight[:, :1].float(), padding="same")  # string padding
        grouped = F.conv2d(images.float(), weight[:4, :1].float(), groups=4)
        double = F.conv2d(images[:, :1], weight[:, :1], padding=1)  # float64: torch's backward was faster
    for output in (wide, same, grouped, double):
        assert "Conv2dColumnInputGradient" not in type(output.grad_fn).__name__

    # weights that require grad keep torch's backward, so weight gradients are still computed
    trainable = weight[:, :1].clone().requires_grad_(True)
    with column_gradient_kernels():
        output = F.conv2d(images[:, :1], trainable, padding=1)
    assert "Conv2dColumnInputGradient" not in type(output.grad_fn).__name__
    (weight_gradient,) = torch.autograd.grad(output.sum(), trainable)
    expected = torch.nn.grad.conv2d_weight(images[:, :1].detach(), trainable.shape, torch.ones_like(output), padding=1)
    torch.testing.assert_close(weight_gradient, expected)


def test_model_in_the_context_gives_the_same_logits_and_gradients():
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(8, 4, 3, padding=1),
        torch.nn.Flatten(),
        torch.nn.Linear(4 * 4 * 4, 3),
    )
    images = torch.rand(5, 1, 8, 8)
    results = []
    for fast in (False, True):
        x = images.clone().requires_grad_(True)
        if fast:
            with column_gradient_kernels():
                logits = model(x)
        else:
            logits = model(x)
        results.append((logits.detach(), torch.autograd.grad(logits[:, 1].sum(), x)[0]))
    assert torch.equal(results[0][0], results[1][0])
    torch.testing.assert_close(results[1][1], results[0][1], rtol=1e-5, atol=1e-6)
    assert all(parameter.grad is None for parameter in model.parameters())
