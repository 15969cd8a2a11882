"""The GEMM + col2im input gradient of a convolution: faster on the CPU than torch's backward for image-facing
float32 layers (1-3 input channels), the largest cost of batched DeepFool on them.

    gradient = column_input_gradient(grad_output, weight, input_size, stride, padding, dilation)
    with column_gradient_kernels():   # autograd: F.conv2d calls that policy.column_gradient_pays get it
        logits = model(images)        # images.requires_grad_(True); weights detached
        gradient = torch.autograd.grad(logits[:, k].sum(), images)[0]

The input gradient is one GEMM W^T @ grad_output, then col2im as kh*kw strided adds (which replaced ``F.fold``,
single-threaded: 2.3 -> 0.65 ms at 1->8 channels). When it pays is ``policy.column_gradient_pays`` (CPU,
float32, at most ``policy.COLUMN_GRADIENT_MAX_IN_CHANNELS`` input channels, weights needing no gradient; the
measurements are there). Users: the sequential engine's convolution backward, and the autograd engine under
``engine="auto"``.

Inside ``column_gradient_kernels()``, calls to ``torch.nn.functional.conv2d`` are intercepted (a
``TorchFunctionMode``: thread-local, nothing in the model is modified); anything else goes to torch
unchanged. Outputs equal torch's exactly, input gradients to float rounding (the GEMM sums in another order);
tested in tests/metrics/robustness/test_column_gradient.py.

(torch's NCHW max pooling is the next cost, ~20 ms for [256, 16, 32, 32] with a 2x2 window; reductions over
strided views were slower still, 31 ms, and channels-last conversions cost more in copies than they saved.)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from medsyn.metrics.robustness.policy import column_gradient_pays, pair

__all__ = ["column_gradient_kernels", "column_input_gradient"]


def column_gradient_kernels() -> TorchFunctionMode:
    """Context manager: inside it, the input gradient of every ``F.conv2d`` call that
    ``policy.column_gradient_pays`` is ``column_input_gradient``'s."""
    return _ColumnGradientKernels()


class _ColumnGradientKernels(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.conv2d:
            call = _conv2d_arguments(*args, **kwargs)
            if call["input"].requires_grad and column_gradient_pays(**call):
                return _Conv2dColumnInputGradient.apply(
                    call["input"], call["weight"], call["bias"], call["stride"], call["padding"], call["dilation"]
                )
        return func(*args, **kwargs)


# ------------------------------------------------------------------ convolution: input gradient


def _conv2d_arguments(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> dict:
    return {
        "input": input,
        "weight": weight,
        "bias": bias,
        "stride": stride,
        "padding": padding,
        "dilation": dilation,
        "groups": groups,
    }


class _Conv2dColumnInputGradient(torch.autograd.Function):
    """conv2d whose backward gives only the input gradient, as W^T @ grad_output then col2im."""

    @staticmethod
    def forward(ctx, input, weight, bias, stride, padding, dilation):
        ctx.save_for_backward(weight)
        ctx.geometry = (tuple(input.shape[-2:]), stride, padding, dilation)
        return F.conv2d(input, weight, bias, stride, padding, dilation)

    @staticmethod
    def backward(ctx, grad_output):
        (weight,) = ctx.saved_tensors
        size, stride, padding, dilation = ctx.geometry
        grad_input = column_input_gradient(grad_output, weight, size, stride, padding, dilation)
        return grad_input, None, None, None, None, None


def column_input_gradient(
    grad_output, weight, input_size, stride, padding, dilation, workspace: dict | None = None
) -> torch.Tensor:
    """Input gradient [N, C_in, H, W] of ``conv2d`` (groups 1) for ``grad_output`` [N, C_out, Ho, Wo]:
    W^T @ grad_output as one GEMM, then col2im. input_size: (H, W).

    workspace: a dict the caller keeps between calls; its buffers are then reused (fresh pages of the ~10 MB
    column matrix cost more than the GEMM). The result is a view into it, valid until the next call."""
    out_channels = weight.shape[0]
    matrix = weight.reshape(out_channels, -1).t()
    rows = grad_output.flatten(2)
    shape = (rows.shape[0], matrix.shape[0], rows.shape[2])  # [N, C_in*kh*kw, L]
    columns = _buffer(workspace, "columns", shape, rows)
    torch.matmul(matrix, rows, out=columns)
    return _col2im(columns, weight.shape[1:], grad_output.shape[-2:], input_size, stride, padding, dilation, workspace)


def _buffer(workspace: dict | None, name: str, shape: tuple, like: torch.Tensor) -> torch.Tensor:
    """An uninitialised tensor of ``shape``, from ``workspace[name]`` when it is large enough."""
    size = math.prod(shape)
    if workspace is None:
        return like.new_empty(shape)
    held = workspace.get(name)
    if held is None or held.numel() < size or held.dtype != like.dtype or held.device != like.device:
        held = workspace[name] = like.new_empty(size)
    return held[:size].view(shape)


def _col2im(columns, kernel_shape, output_size, input_size, stride, padding, dilation, workspace=None):
    """Sum columns [N, C*kh*kw, Ho*Wo] back onto the input grid [N, C, H, W], as ``F.fold`` does (same
    summation order), with kh*kw strided adds."""
    channels, kernel_h, kernel_w = kernel_shape
    (out_h, out_w), (height, width) = output_size, input_size
    (stride_h, stride_w), (pad_h, pad_w), (dil_h, dil_w) = (pair(stride), pair(padding), pair(dilation))
    columns = columns.view(columns.shape[0], channels, kernel_h, kernel_w, out_h, out_w)
    # The padded grid is a little larger than needed so every strided slice below has exactly out_h x out_w
    # elements, whatever the stride and the size.
    shape = (
        columns.shape[0],
        channels,
        max(height + 2 * pad_h, dil_h * (kernel_h - 1) + stride_h * (out_h - 1) + 1),
        max(width + 2 * pad_w, dil_w * (kernel_w - 1) + stride_w * (out_w - 1) + 1),
    )
    padded = _buffer(workspace, "padded", shape, columns).zero_()
    for dy in range(kernel_h):
        for dx in range(kernel_w):
            top, left = dy * dil_h, dx * dil_w
            bottom, right = top + stride_h * (out_h - 1) + 1, left + stride_w * (out_w - 1) + 1
            padded[:, :, top:bottom:stride_h, left:right:stride_w] += columns[:, :, dy, dx]
    return padded[:, :, pad_h : pad_h + height, pad_w : pad_w + width]

