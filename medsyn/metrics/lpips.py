"""LPIPS (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep Features as a Perceptual Metric"), the
VGG16 variant of the ``lpips`` package, version 0.1 (paper 001 §3.3 and Table 1): a perceptual distance
between two images, 0 for identical images, larger for images that look more different.

    network = load_lpips_vgg16(vgg16_weights)             # fidelity.vgg16_weights + the lpips package's layers
    distances = lpips_distances(network, first, second)   # float32 [N], pair i = (first[i], second[i])

For images x, y in [0, 1] (grey images repeated to RGB), as ``lpips.LPIPS(net="vgg", version="0.1")`` with
``normalize=True``:

    s(x)    = ((2x - 1) - SHIFT) / SCALE                    the package's ScalingLayer
    f_l(x)  = VGG16 activations of s(x) at relu1_2, relu2_2, relu3_3, relu4_3, relu5_3: [C_l, H_l, W_l]
    n_l(x)  = f_l(x) / (sqrt(sum_c f_l(x)_c^2) + 1e-10)      unit length over channels at every position
    d(x, y) = sum_l mean_{h,w} sum_c w_{l,c} (n_l(x) - n_l(y))_{c,h,w}^2      w_l >= 0: 1x1 linear layers

at the images' own resolution (the package does not resize; four 2x2 max pools come before relu5_3, so
H and W must be at least MIN_IMAGE_SIZE).

Nothing is downloaded. The backbone is the torchvision-format VGG16 weights file that the ``vgg16`` feature
extractor loads (``fidelity.vgg16_weights``; only its ``features.*`` tensors are used), or that extractor's
already-loaded network (:func:`lpips_vgg16_of`). The linear layers are the file the ``lpips`` package ships in
its wheel (``lpips/weights/v0.1/vgg.pth``), found through the installed distribution's files without
importing ``lpips`` (its import needs torchvision, which cannot be installed beside medsyn's CPU torch; the
Makefile installs lpips with ``--no-deps``), or any file of the same five tensors given by path.
"""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from medsyn.metrics.features.vgg16 import VGG16FeatureNet, vgg16_convolutions
from medsyn.metrics.features.weights_file import load_state_strict, read_state_dict
from medsyn.metrics.validation import as_image_batch

__all__ = [
    "CHANNELS",
    "LINEAR_LAYERS_IN_PACKAGE",
    "LPIPSVGG16",
    "LPIPS_VERSION",
    "MIN_IMAGE_SIZE",
    "load_lpips_vgg16",
    "load_vgg16_convolutions",
    "lpips_distances",
    "lpips_linear_layers_file",
    "lpips_vgg16_of",
    "read_linear_layers",
]

LPIPS_VERSION = "0.1"  # v0.0 did not scale its inputs (the package's note); v0.1 is its default
LINEAR_LAYERS_IN_PACKAGE = f"lpips/weights/v{LPIPS_VERSION}/vgg.pth"
LPIPS_PACKAGE_PIN = "lpips==0.1.4"  # the release whose wheel holds the file above (Makefile installs it)
# lpips.ScalingLayer: ImageNet mean/std expressed on the [-1, 1] scale
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
NORMALISE_EPS = 1e-10  # lpips.normalize_tensor
# Indices in torchvision's vgg16().features of relu1_2, relu2_2, relu3_3, relu4_3, relu5_3: the ends of the
# package's slices [0:4], [4:9], [9:16], [16:23], [23:30] (lpips/pretrained_networks.py, class vgg16).
TAPS = (3, 8, 15, 22, 29)
CHANNELS = (64, 128, 256, 512, 512)
MIN_IMAGE_SIZE = 16
LPIPS_BATCH = 16  # pairs per forward pass (memory, not results, depends on it)


class _VGG16Convolutions(nn.Module):
    """The ``features`` part of torchvision's VGG16, under its state-dict names (``features.0.weight``, ...)."""

    def __init__(self) -> None:
        super().__init__()
        self.features = vgg16_convolutions()


class LPIPSVGG16(nn.Module):
    """LPIPS on a VGG16 backbone.

    convolutions: torchvision's ``vgg16().features`` (at least indices 0..29; shared, not copied, so the
        vgg16 extractor's network can serve both); linear_layers: the five 1x1 weights [1, C_l, 1, 1], >= 0.
    ``layer_distances(first, second)`` -> [N, 5] (one column per tapped layer); ``forward`` -> their sum [N].
    Inputs: float [N, C, H, W] in [0, 1], C in {1, 3}, H and W >= MIN_IMAGE_SIZE.
    """

    def __init__(self, convolutions: nn.Sequential, linear_layers: Sequence[torch.Tensor]) -> None:
        super().__init__()
        if not isinstance(convolutions, nn.Sequential) or len(convolutions) <= TAPS[-1]:
            raise ValueError(f"LPIPS convolutions must be torchvision's vgg16().features (>= {TAPS[-1] + 1} "
                             f"modules), got {type(convolutions).__name__} of {len(convolutions)} module(s)")
        if not all(isinstance(convolutions[index], nn.ReLU) for index in TAPS):
            raise ValueError(f"LPIPS convolutions: modules {list(TAPS)} must be the ReLUs relu1_2 .. relu5_3 of "
                             "torchvision's vgg16().features")
        self.convolutions = convolutions[: TAPS[-1] + 1]
        weights = _checked_linear_layers(linear_layers, source="linear_layers")
        self.linear = nn.ParameterList([nn.Parameter(w, requires_grad=False) for w in weights])
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1))

    def layer_distances(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        count = len(first)
        images = torch.cat([first, second]).expand(-1, 3, -1, -1)  # grey -> RGB; RGB unchanged
        x = (2 * images - 1 - self.shift) / self.scale
        per_layer = []
        for index, module in enumerate(self.convolutions):
            x = module(x)
            if index in TAPS:  # the next module is a max pool (not in place): x stays intact
                unit = x / (x.pow(2).sum(dim=1, keepdim=True).sqrt() + NORMALISE_EPS)
                squared = (unit[:count] - unit[count:]).pow(2)
                weighted = F.conv2d(squared, self.linear[TAPS.index(index)])  # [N, 1, H_l, W_l]
                per_layer.append(weighted.mean(dim=(1, 2, 3)))
        return torch.stack(per_layer, dim=1)

    def forward(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        return self.layer_distances(first, second).sum(dim=1)


def _checked_linear_layers(layers: Sequence[torch.Tensor], *, source: str) -> list[torch.Tensor]:
    layers = list(layers)
    shapes = [tuple(w.shape) if isinstance(w, torch.Tensor) else type(w).__name__ for w in layers]
    if shapes != [(1, c, 1, 1) for c in CHANNELS]:
        raise ValueError(f"{source}: LPIPS VGG16 linear layers must be 5 tensors of shapes "
                         f"{[(1, c, 1, 1) for c in CHANNELS]}, got {shapes}")
    weights = [w.detach().to(torch.float32).cpu() for w in layers]
    for number, w in enumerate(weights):
        if not torch.isfinite(w).all() or (w < 0).any():
            # the package's training clamps them at 0: a negative weight would let distances go below 0
            raise ValueError(f"{source}: LPIPS linear layer {number} must be finite and >= 0, "
                             f"got min {float(w.min()):.4g}")
    return weights


def lpips_linear_layers_file() -> Path:
    """The path of ``lpips/weights/v0.1/vgg.pth`` inside the installed ``lpips`` distribution (not imported);
    FileNotFoundError saying how to install it when there is none."""
    try:
        distribution = importlib.metadata.distribution("lpips")
    except importlib.metadata.PackageNotFoundError:
        raise FileNotFoundError(
            f"LPIPS needs the linear layers shipped in the lpips package ({LINEAR_LAYERS_IN_PACKAGE}), which is "
            f"not installed: pip install --no-deps {LPIPS_PACKAGE_PIN} (make install does)"
        ) from None
    path = Path(str(distribution.locate_file(LINEAR_LAYERS_IN_PACKAGE)))
    if not path.is_file():
        raise FileNotFoundError(f"the installed lpips {distribution.version} has no {LINEAR_LAYERS_IN_PACKAGE} "
                                f"(looked at {path}); install {LPIPS_PACKAGE_PIN}")
    return path


def read_linear_layers(path: str | os.PathLike) -> list[torch.Tensor]:
    """The five linear-layer weights [1, C_l, 1, 1] of an lpips-format file (keys ``lin{l}.model.1.weight``,
    as the package saves them with its dropout at index 0); ValueError naming the file otherwise."""
    state = read_state_dict(path)
    expected = [f"lin{number}.model.1.weight" for number in range(len(CHANNELS))]
    if sorted(state) != sorted(expected):
        raise ValueError(f"LPIPS linear-layer file {Path(path)} must hold exactly {expected}, got {sorted(state)}")
    return _checked_linear_layers([state[key] for key in expected], source=f"LPIPS linear-layer file {Path(path)}")


def load_vgg16_convolutions(weights_path: str | os.PathLike) -> nn.Sequential:
    """torchvision's ``vgg16().features`` with the ``features.*`` tensors of ``weights_path`` (a full
    torchvision VGG16 file, whose ``classifier.*`` tensors are ignored, or its features alone); strict
    otherwise: ValueError naming the file and the mismatching keys."""
    state = {key: value for key, value in read_state_dict(weights_path).items() if not key.startswith("classifier.")}
    with torch.device("meta"):
        convolutions = _VGG16Convolutions()
    load_state_strict(convolutions, state, source=f"VGG16 weights file {Path(weights_path)}")
    return convolutions.features.eval()


def load_lpips_vgg16(vgg16_weights: str | os.PathLike,
                     linear_layers: str | os.PathLike | None = None) -> LPIPSVGG16:
    """LPIPS with the backbone of ``vgg16_weights`` and the linear layers of ``linear_layers`` (default: the
    file in the installed lpips package)."""
    layers = read_linear_layers(linear_layers if linear_layers is not None else lpips_linear_layers_file())
    return LPIPSVGG16(load_vgg16_convolutions(vgg16_weights), layers).eval()


def lpips_vgg16_of(feature_net: VGG16FeatureNet, linear_layers: str | os.PathLike | None = None) -> LPIPSVGG16:
    """LPIPS sharing the convolutions of an already-loaded VGG16 feature net (the vgg16 extractor's), so the
    weights file is not read twice."""
    if not isinstance(feature_net, VGG16FeatureNet):
        raise ValueError(f"feature_net must be a VGG16FeatureNet, got {type(feature_net).__name__}")
    layers = read_linear_layers(linear_layers if linear_layers is not None else lpips_linear_layers_file())
    return LPIPSVGG16(feature_net.features, layers).eval()


@torch.no_grad()
def lpips_distances(network: LPIPSVGG16, first: torch.Tensor, second: torch.Tensor, *,
                    batch_size: int = LPIPS_BATCH) -> torch.Tensor:
    """first, second: float [N, C, H, W] (or [N, H, W]) in [0, 1], C in {1, 3}, H, W >= MIN_IMAGE_SIZE
    -> float32 [N] on the CPU: LPIPS of each pair (first[i], second[i]), run on the network's device."""
    if not isinstance(network, LPIPSVGG16):
        raise ValueError(f"network must be an LPIPSVGG16 (load_lpips_vgg16), got {type(network).__name__}")
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    first, second = as_image_batch(first, "first"), as_image_batch(second, "second")
    if first.shape != second.shape:
        raise ValueError(f"first and second must have the same shape, got {tuple(first.shape)} and "
                         f"{tuple(second.shape)}")
    if first.shape[1] not in (1, 3):
        raise ValueError(f"LPIPS (VGG16) takes grey or RGB images, got {first.shape[1]} channels")
    if min(first.shape[2:]) < MIN_IMAGE_SIZE:
        raise ValueError(f"LPIPS (VGG16) needs images of at least {MIN_IMAGE_SIZE}x{MIN_IMAGE_SIZE} (four max "
                         f"pools before relu5_3), got {first.shape[2]}x{first.shape[3]}")
    device = network.shift.device
    network.eval()
    distances = [network(first[start:start + batch_size].to(device), second[start:start + batch_size].to(device))
                 for start in range(0, len(first), batch_size)]
    return torch.cat(distances).float().cpu() if distances else torch.zeros(0)
