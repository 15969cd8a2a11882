"""Registry of feature extractors (as torch-fidelity's ``register_feature_extractor``): metric code looks an
extractor up by name instead of branching over names, and users can add their own.

An extractor is described by a :class:`FeatureExtractorSpec`: a factory that builds the network (eval
mode, on the CPU), the square input size it expects, the per-channel normalisation its weights were
trained with, and the feature dimension. The extractor's ``name`` becomes part of every metric name
computed on its features (``fid_effnet_lite0``), so numbers from different extractors are never mixed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

__all__ = [
    "FeatureExtractorSpec",
    "register_feature_extractor",
    "get_feature_extractor",
    "load_feature_extractor",
    "registered_feature_extractors",
    "unregister_feature_extractor",
]


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


_REGISTRY: dict[str, FeatureExtractorSpec] = {}
# Built networks, one per name per process: building EfficientNet-Lite0 and reading its weights costs
# ~0.3 s, and every metric of a run asks for it.
_LOADED: dict[str, torch.nn.Module] = {}


def register_feature_extractor(spec: FeatureExtractorSpec, *, overwrite: bool = False) -> FeatureExtractorSpec:
    """Add ``spec`` under ``spec.name``. Registering an existing name is an error unless ``overwrite``."""
    if not isinstance(spec, FeatureExtractorSpec):
        raise ValueError(f"spec must be a FeatureExtractorSpec, got {type(spec).__name__}")
    if not spec.name or not spec.name.replace("_", "").isalnum():
        raise ValueError(f"spec.name must be a non-empty identifier of letters, digits and '_', got {spec.name!r}")
    if (spec.input_size is not None and spec.input_size <= 0) or spec.feature_dim <= 0 or spec.input_channels <= 0:
        raise ValueError(
            "spec.input_size (or None), spec.feature_dim and spec.input_channels must be positive, got "
            f"{spec.input_size}, {spec.feature_dim} and {spec.input_channels}"
        )
    if len(spec.mean) != spec.input_channels or len(spec.std) != spec.input_channels or min(spec.std) <= 0:
        raise ValueError(
            f"spec.mean and spec.std must have input_channels={spec.input_channels} entries with std > 0, "
            f"got {spec.mean}, {spec.std}"
        )
    if spec.name in _REGISTRY and not overwrite:
        raise ValueError(f"a feature extractor named {spec.name!r} is already registered (pass overwrite=True)")
    _REGISTRY[spec.name] = spec
    _LOADED.pop(spec.name, None)
    return spec


def unregister_feature_extractor(name: str) -> None:
    """Remove ``name`` (and its cached network); used for temporary extractors such as a domain classifier."""
    _REGISTRY.pop(name, None)
    _LOADED.pop(name, None)


def _ensure_builtins() -> None:
    # The built-in extractors register themselves on import; importing here (not at module top) keeps
    # the registry free of import cycles.
    import medsyn.metrics.features.effnet_lite0  # noqa: F401


def registered_feature_extractors() -> list[str]:
    _ensure_builtins()
    return sorted(_REGISTRY)


def get_feature_extractor(name: str) -> FeatureExtractorSpec:
    """The spec registered under ``name``; ValueError listing the known names otherwise."""
    _ensure_builtins()
    if not isinstance(name, str) or name not in _REGISTRY:
        raise ValueError(f"extractor_name must be one of {sorted(_REGISTRY)}, got {name!r}")
    return _REGISTRY[name]


def load_feature_extractor(name: str) -> torch.nn.Module:
    """The network of extractor ``name`` in eval mode on the CPU, built once per process."""
    spec = get_feature_extractor(name)
    if name not in _LOADED:
        network = spec.build()
        if not isinstance(network, torch.nn.Module):
            raise ValueError(f"the build() of extractor {name!r} returned {type(network).__name__}, not a torch.nn.Module")
        network.eval()
        for parameter in network.parameters():
            parameter.requires_grad_(False)
        _LOADED[name] = network
    return _LOADED[name]
