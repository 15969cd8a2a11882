"""Which DeepFool engine runs, and which kernels the engines use: every threshold and every "is the fast path
usable / does it pay" predicate of ``medsyn.metrics.robustness``, in one place.

    resolve_engine(model, images, "auto")       # -> "autograd" | "sequential", what deepfool(...) will run

Engines (``engine=`` of ``deepfool`` and ``adversarial_accuracy``):
- ``"autograd"``: the reference. Plain torch autograd (one forward and K-1 backward passes per step), nothing
  intercepted: any model, any device, any floating dtype.
- ``"sequential"``: the accelerator (``sequential_engine``): an explicit batched backward of the model's layer
  list with compiled CPU kernels. Usable for an ``nn.Sequential`` of supported layers, on the CPU, in float32
  or float64; forcing it on anything else is a ValueError saying why (never a silent fallback).
- ``"auto"``: ``"sequential"`` where it is usable and ``sequential_pays`` (what was measured is there), else
  ``"autograd"``; an autograd run under ``"auto"`` also takes the GEMM + col2im input gradient of image-facing
  float32 CPU convolutions (``column_gradient_pays``). These are exactly the choices DeepFool made before the
  engine switch existed, so ``"auto"`` gives the same bits as before.

Where numbers were measured: the comments below say. "This VM" is the 2-core KVM guest where every kernel here
was tuned (AMD EPYC Zen 4 with AVX-512, torch 2.13 CPU build, November 2026); on other CPUs the trade-offs
may differ (see ``sequential_pays`` for one that does).
"""

from __future__ import annotations

import torch
from torch import nn

from medsyn.kernels.dispatch import cpu_kernels, has_cpu_kernels

__all__ = [
    "COLUMN_GRADIENT_MAX_IN_CHANNELS",
    "DIRECT_CONV_FLOAT32_MAX_IN_CHANNELS",
    "ENGINES",
    "SEED_BATCH_BYTES",
    "SEQUENTIAL_DTYPES",
    "SPARSE_BLOCK_FLOAT32_MAX_IMAGE_CHANNELS",
    "attack_device",
    "check_engine",
    "column_gradient_pays",
    "direct_conv_pays",
    "direct_conv_usable",
    "is_plain_2x2_pool",
    "pair",
    "relu_pool_kernel_usable",
    "resolve_engine",
    "sequential_modules",
    "sequential_pays",
    "sequential_unusable_reason",
    "sparse_block_pays",
    "unsupported_layer_reason",
]

ENGINES = ("auto", "autograd", "sequential")

# ------------------------------------------------------------------ thresholds

# float32 CPU convolutions with at most this many input channels get the GEMM + col2im input gradient
# (column_gradient.column_input_gradient) instead of torch's backward. Measured on this VM, 1 thread, float32,
# batch 256 at 32 px (torch backward -> GEMM + fold): 1->16 channels 3x3 32.6 -> 4.9 ms, 1->8 32.8 -> 4.3 ms,
# 3->16 32.3 -> 12.5 ms; batch 64 at 64 px: 3->64 3x3 101 -> 26 ms, 3->64 7x7/2 67 -> 31 ms; with 4 input
# channels it was slower (14.8 -> 33.6 ms), hence 3. In float64 torch's own backward was faster (5.9 vs 8.5 ms
# for 1->16 at 32 px), so float64 never takes it.
COLUMN_GRADIENT_MAX_IN_CHANNELS = 3

# float32 convolutions with at most this many input channels run the compiled direct loop
# (csrc/cpu/direct_conv.cpp) in the sequential engine's forward pass. Measured on this VM, 2 threads, batch 256,
# 32 px: 1 -> 16 channels 1.1 vs 15.1 ms (oneDNN), 3 -> 16 2.5 vs 13.6 ms; with 8-32 input channels oneDNN was
# as fast or faster, so it keeps them. float64 convolutions always take the direct loop: torch has no oneDNN
# float64 convolution and its reference path was 2-4x slower (1 thread: 16->32 at 16 px 21 vs ~45 ms).
DIRECT_CONV_FLOAT32_MAX_IN_CHANNELS = 3

# Conv -> ReLU -> 2x2 max-pool blocks whose convolution has at most this many input channels (image-facing
# layers) take the sparse compiled block backward (csrc/cpu/conv_pool_backward.cpp) only in float64. Measured
# on this VM, small_cnn, 2 threads, batch 256: in float32 the GEMM + col2im path was about as fast (19.6 vs
# ~22 ms per step), and a new summation order moves near-tie predictions; in float64 the block kernel replaced
# torch's backward of the first layer, 38 of 93 ms per step (benchmarks/README.md, "Batched DeepFool").
SPARSE_BLOCK_FLOAT32_MAX_IMAGE_CHANNELS = 3

# Largest (seeds x images) activation gradient the sequential engine holds at once: the K-1 logit-gap seeds go
# backward in groups that stay below it. Measured on this VM: 2304-image convolution backward calls ran at a
# third of the speed of 256-image ones (out of cache); 32 MiB is 1-2 seeds for a batch of 256 digits at 32 px.
SEED_BATCH_BYTES = 32 << 20

# The dtypes the sequential engine's compiled kernels take (and its tests cover).
SEQUENTIAL_DTYPES = (torch.float32, torch.float64)


# ------------------------------------------------------------------ the engine


def check_engine(engine: object) -> str:
    """``engine`` if it is one of ``ENGINES``, else a ValueError listing them."""
    if not isinstance(engine, str) or engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(repr(e) for e in ENGINES)}, got {engine!r}")
    return engine


def resolve_engine(model: nn.Module, images: torch.Tensor, engine: str = "auto") -> str:
    """The engine ``deepfool(model, images, engine=engine)`` runs: "autograd" or "sequential".

    model: the classifier attacked (deepfool attacks in eval mode, so its current mode does not matter);
    images: float [N,C,H,W], of the dtype the attack runs in (only its dtype is read; the attack runs on the
    device of the model's parameters). engine: one of ``ENGINES``. Raises ValueError for an unknown engine, and
    for "sequential" when the sequential engine cannot run this model, naming the reason.
    """
    check_engine(engine)
    if engine == "autograd":
        return "autograd"
    reason = sequential_unusable_reason(model, images)
    if engine == "sequential":
        if reason is not None:
            raise ValueError(
                f"engine='sequential' cannot attack this model: {reason}. engine='autograd' (the reference) runs "
                "any model on any device; engine='auto' picks the sequential engine only where it can run"
            )
        return "sequential"
    return "sequential" if reason is None and sequential_pays(model, images) else "autograd"


def attack_device(model: nn.Module) -> torch.device:
    """The device DeepFool runs on: that of the model's first parameter (the CPU for a parameter-free model)."""
    return next(iter(model.parameters()), torch.empty(0)).device


def sequential_unusable_reason(model: nn.Module, images: torch.Tensor) -> str | None:
    """Why the sequential engine cannot attack ``model`` on ``images`` (see ``resolve_engine``), or None."""
    device = attack_device(model)
    if device.type != "cpu":
        return f"it runs on the CPU only (compiled CPU kernels, CPU buffers), and the model is on {device}"
    if images.dtype not in SEQUENTIAL_DTYPES:
        return f"it takes float32 or float64, and the images are {images.dtype}"
    modules = sequential_modules(model)
    if isinstance(modules, str):
        return modules
    for position, module in enumerate(modules):
        reason = unsupported_layer_reason(module)
        if reason is not None:
            return f"layer {position} of the flattened model ({module!r:.60}) {reason}"
    return None


def sequential_pays(model: nn.Module, images: torch.Tensor) -> bool:
    """Whether ``"auto"`` takes the sequential engine for a model it can run (``sequential_unusable_reason``
    None): always. This keeps ``"auto"`` bit-identical to DeepFool before the engine switch, which took it for
    every such model on the CPU. What was measured (benchmarks/bench_deepfool.py, batch 256 digits at 32 px,
    5 steps, small_cnn / cnn4 / cnn3, best of 3, 1 and 2 threads; benchmarks/README.md):
    - 2026-11-25, AMD EPYC Zen 4 with AVX-512 (where the kernels were written): sequential 15.1-20.1x (float32)
      and 13.9-23.4x (float64) faster than torchattacks, against 6.5-10.5x and 3.3-5.6x for the autograd path
      measured before it: the sequential engine paid, ~2x in float32 and ~4x in float64;
    - 2026-12-03, AMD EPYC Zen 3, AVX2 only (the development VM since): autograd time / sequential time
      0.9-1.1x in float32 and 0.6-1.0x in float64: it does NOT pay there (float64 small_cnn 2.15 vs 1.22 s).
    A rule on the CPU's vector width would follow the second measurement, but would change what ``"auto"``
    computes on such CPUs (the engines agree only to float rounding, and near-tie predictions can flip);
    until that is decided, ``engine="autograd"`` is the faster choice on an AVX2-only CPU."""
    return True


# ------------------------------------------------------------------ which layers the sequential engine takes


def sequential_modules(model: nn.Module) -> list[nn.Module] | str:
    """The flattened layer list of an ``nn.Sequential`` (nested ones are flattened, e.g. medsyn's VGG16), or a
    string saying why ``model`` has none."""
    if not isinstance(model, nn.Sequential):
        return (
            f"it runs an nn.Sequential of supported layers, and the model is a {type(model).__name__} "
            "(its forward() cannot be read as a layer list)"
        )
    modules: list[nn.Module] = []
    for module in model:
        flattened = sequential_modules(module) if isinstance(module, nn.Sequential) else [module]
        modules += flattened  # type: ignore[operator]  # a nested nn.Sequential always gives a list
    return modules


def unsupported_layer_reason(module: nn.Module) -> str | None:
    """Why the sequential engine cannot take the layer ``module`` (as a phrase), or None."""
    if isinstance(module, (nn.Dropout, nn.Identity, nn.ReLU, nn.Linear, nn.AdaptiveAvgPool2d)):
        return None
    if isinstance(module, nn.Conv2d):
        if module.padding_mode != "zeros":
            return f"has padding_mode={module.padding_mode!r}; the engine takes zero padding only"
        if isinstance(module.padding, str):
            return f"has padding={module.padding!r}; the engine takes numeric padding only"
        return None
    if isinstance(module, nn.Flatten):
        if module.start_dim == 1 and module.end_dim == -1:
            return None
        return f"flattens dims {module.start_dim}..{module.end_dim}; the engine takes Flatten(1, -1) only"
    if isinstance(module, nn.MaxPool2d):
        return "returns indices; the engine takes MaxPool2d(return_indices=False) only" if module.return_indices else None
    return (
        "is not a layer the engine supports (Conv2d, ReLU, MaxPool2d, AdaptiveAvgPool2d, Flatten, Linear, "
        "Dropout, Identity)"
    )


# ------------------------------------------------------------------ which kernels the engines use


def relu_pool_kernel_usable() -> bool:
    """Whether the compiled ReLU + 2x2 max-pool kernel (csrc/cpu/relu_max_pool.cpp) can run: the extension is
    built. Where it can, it pays: torch's NCHW max pooling with indices took ~3 ms per call on this VM, the
    kernel ~1 ms, and its backward writes each input-gradient block once (benchmarks/README.md)."""
    return has_cpu_kernels()


def is_plain_2x2_pool(module: nn.Module) -> bool:
    """A 2x2 / stride-2 max pool without padding, dilation, ceil mode or indices: what the compiled kernels take."""
    return (
        isinstance(module, nn.MaxPool2d)
        and pair(module.kernel_size) == (2, 2)
        and pair(module.stride if module.stride is not None else module.kernel_size) == (2, 2)
        and pair(module.padding) == (0, 0)
        and pair(module.dilation) == (1, 1)
        and not module.ceil_mode
        and not module.return_indices
    )


def sparse_block_pays(conv: nn.Conv2d) -> bool:
    """Whether the Conv2d of a Conv -> ReLU -> 2x2 max-pool block takes the compiled sparse block backward
    (csrc/cpu/conv_pool_backward.cpp): stride 1, zero numeric padding, no dilation or groups, a geometry the
    kernel has a fast path for (3x3 with 1, 3, 8, 16, 32 or 64 input channels), and, in float32, not an
    image-facing layer (``SPARSE_BLOCK_FLOAT32_MAX_IMAGE_CHANNELS``). Measured on this VM, 1 thread, batch 256,
    2 seeds, float32: 16->32 channels at 16 px 7.5 vs 18 ms (dense backward), 32->64 at 8 px 7.3 vs 11.8 ms,
    8->16 at 16 px 3.6 vs 8.2 ms; float64 16->32 at 16 px 13.5 vs 45 ms."""
    return (
        conv.padding_mode == "zeros"
        and not isinstance(conv.padding, str)
        and pair(conv.stride) == (1, 1)
        and pair(conv.dilation) == (1, 1)
        and conv.groups == 1
        and has_cpu_kernels()
        and cpu_kernels().conv_relu_max_pool2x2_backward_is_fast(conv.in_channels, *pair(conv.kernel_size))
        and (conv.in_channels > SPARSE_BLOCK_FLOAT32_MAX_IMAGE_CHANNELS or conv.weight.dtype == torch.float64)
    )


def direct_conv_usable(conv: nn.Conv2d) -> bool:
    """Whether the compiled direct convolution (csrc/cpu/direct_conv.cpp) can compute ``conv``'s forward pass:
    stride 1, no dilation or groups, contiguous weights, the extension built."""
    return (
        pair(conv.stride) == (1, 1)
        and pair(conv.dilation) == (1, 1)
        and conv.groups == 1
        and conv.weight.is_contiguous()
        and has_cpu_kernels()
    )


def direct_conv_pays(images: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether a usable direct convolution beats torch's for ``images`` [N,C,H,W] and ``weight``: on the CPU, in
    float64, or in float32 with at most ``DIRECT_CONV_FLOAT32_MAX_IN_CHANNELS`` input channels."""
    return images.device.type == "cpu" and (
        images.dtype == torch.float64
        or (images.dtype == torch.float32 and weight.shape[1] <= DIRECT_CONV_FLOAT32_MAX_IN_CHANNELS)
    )


def column_gradient_pays(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> bool:
    """Whether ``column_gradient.column_input_gradient`` computes the input gradient of
    ``F.conv2d(input, weight, bias, stride, padding, dilation, groups)`` faster than torch: a CPU float32
    convolution (groups 1, numeric padding) with at most ``COLUMN_GRADIENT_MAX_IN_CHANNELS`` input channels
    whose weights need no gradient."""
    return (
        groups == 1
        and not isinstance(padding, str)  # "same"/"valid": left to torch
        and input.ndim == 4
        and input.device.type == "cpu"  # measured on the CPU; cuDNN's backward is another matter
        and input.dtype == torch.float32
        and not weight.requires_grad
        and (bias is None or not bias.requires_grad)
        and weight.shape[1] <= COLUMN_GRADIENT_MAX_IN_CHANNELS
    )


def pair(value) -> tuple[int, int]:
    """(h, w) of a conv/pool size argument given as an int or a 1- or 2-tuple."""
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[-1]))
