"""VGG16 (Simonyan & Zisserman 2015, configuration D) parameter-compatible with torchvision's ``vgg16`` and
so with torch-fidelity's ``FeatureExtractorVGG16``, which loads a torchvision state dict. Features: the
4096-d output of the second fully connected layer after its ReLU ("fc2_relu", torch-fidelity's default
for FID/KID/precision-recall; paper 000 §4.1.1 computes precision/recall on VGG16 features).

medsyn downloads nothing: the user gives the PATH of a weights file (:func:`vgg16_extractor`, or :func:`register_vgg16` for a process-wide name).
Input handling follows torch-fidelity: TF1 bilinear resize to 224x224 and ImageNet mean/std.
"""

from __future__ import annotations

import os

import torch
from torch import nn
from torch.nn import functional as F

from medsyn.metrics.features.registry import register_feature_extractor
from medsyn.metrics.features.spec import FeatureExtractorSpec
from medsyn.metrics.features.weights_file import load_architecture, weights_file_extractor

__all__ = ["VGG16FeatureNet", "load_vgg16_feature_net", "register_vgg16", "vgg16_convolutions", "vgg16_extractor"]

# torchvision cfgs["D"]: conv widths, "M" = 2x2 max pool
CONFIGURATION_D = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
INPUT_SIZE = 224
INPUT_MEAN = (0.485, 0.456, 0.406)
INPUT_STD = (0.229, 0.224, 0.225)
FEATURE_DIM = 4096


def vgg16_convolutions() -> nn.Sequential:
    """torchvision's ``vgg16().features``: 13 3x3 convolutions with ReLU and 5 max pools, indices 0..30
    (LPIPS reads relu1_2 .. relu5_3 at indices 3, 8, 15, 22, 29)."""
    layers: list[nn.Module] = []
    channels = 3
    for item in CONFIGURATION_D:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(channels, item, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            channels = item
    return nn.Sequential(*layers)


class VGG16FeatureNet(nn.Module):
    """images float32 [N,3,224,224] (ImageNet-normalised) -> fc2 ReLU features [N, 4096]; ``logits`` -> [N,1000].

    Module names and indices match torchvision (``features.0``, ..., ``classifier.6``).
    """

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.features = vgg16_convolutions()
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(inplace=True), nn.Dropout(),
            nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Dropout(),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self.avgpool(self.features(x)), 1)
        x = self.classifier[3](self.classifier[2](self.classifier[1](self.classifier[0](x))))
        return F.relu(x)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier[6](self.forward(x))


def load_vgg16_feature_net(weights_path: str | os.PathLike) -> VGG16FeatureNet:
    """VGG16 with the torchvision-format weights at ``weights_path`` (strict: wrong file -> ValueError)."""
    return load_architecture(VGG16FeatureNet, weights_path)


def vgg16_extractor(weights_path: str | os.PathLike, name: str = "vgg16") -> FeatureExtractorSpec:
    """The fc2-ReLU extractor of the weights at ``weights_path`` (loaded now, not registered)."""
    return weights_file_extractor(VGG16FeatureNet, weights_path, name=name, input_size=INPUT_SIZE, mean=INPUT_MEAN,
                                  std=INPUT_STD, feature_dim=FEATURE_DIM)


def register_vgg16(weights_path: str | os.PathLike, name: str = "vgg16") -> FeatureExtractorSpec:
    """:func:`vgg16_extractor`, registered process-wide as ``name`` (for ``extract_features(images, name)``)."""
    return register_feature_extractor(vgg16_extractor(weights_path, name), overwrite=True)
