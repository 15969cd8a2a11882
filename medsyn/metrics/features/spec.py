"""What a feature extractor is: :class:`FeatureExtractorSpec`, a checked description of a network and the
pre-processing its weights expect. Registered by name (``registry``) or held by a run as an object
(``domain_extractor``, ``inception_v3_extractor``, ``vgg16_extractor``); ``extract_features`` takes either.

The extractor's ``name`` becomes part of every metric name computed on its features (``fid_effnet_lite0``),
so numbers from different extractors are never mixed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

__all__ = ["FeatureExtractorSpec", "frozen_network"]


@dataclass(frozen=True)
class FeatureExtractorSpec:
    """What :func:`medsyn.metrics.features.extract.extract_features` needs to run an extractor.

    name: short identifier used in metric names, e.g. ``"effnet_lite0"``
    build: zero-argument factory returning a module mapping float32 [N,3,S,S] (already normalised)
        to float32 [N, feature_dim]
    input_size: S, the square side the images are resized to; None keeps the images' own size (a domain
        classifier trained on the data at its native resolution)
    mean, std: per-channel normalisation applied to images in [0, 1]: (x - mean) / std; one entry per
        input channel
    feature_dim: D, the length of one feature vector
    input_channels: 3 for ImageNet networks (grey images are repeated to RGB), or the data's channel count
    resize_mode: interpolation used by ``torch.nn.functional.interpolate`` to reach ``input_size``
    """

    name: str
    build: Callable[[], torch.nn.Module]
    input_size: int | None
    mean: tuple[float, ...]
    std: tuple[float, ...]
    feature_dim: int
    input_channels: int = 3
    resize_mode: str = "bilinear"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or not self.name.replace("_", "").isalnum():
            raise ValueError(f"spec.name must be a non-empty identifier of letters, digits and '_', got {self.name!r}")
        if not callable(self.build):
            raise ValueError(f"spec.build of extractor {self.name!r} must be callable, got {type(self.build).__name__}")
        if (self.input_size is not None and self.input_size <= 0) or self.feature_dim <= 0 or self.input_channels <= 0:
            raise ValueError(
                "spec.input_size (or None), spec.feature_dim and spec.input_channels must be positive, got "
                f"{self.input_size}, {self.feature_dim} and {self.input_channels}"
            )
        if len(self.mean) != self.input_channels or len(self.std) != self.input_channels or min(self.std) <= 0:
            raise ValueError(
                f"spec.mean and spec.std must have input_channels={self.input_channels} entries with std > 0, "
                f"got {self.mean}, {self.std}"
            )


def frozen_network(spec: FeatureExtractorSpec) -> torch.nn.Module:
    """``spec.build()`` in eval mode with gradients off; ValueError if it is not a ``torch.nn.Module``."""
    network = spec.build()
    if not isinstance(network, torch.nn.Module):
        raise ValueError(f"the build() of extractor {spec.name!r} returned {type(network).__name__}, not a torch.nn.Module")
    network.eval()
    for parameter in network.parameters():
        parameter.requires_grad_(False)
    return network
