"""Feature extractors for fidelity metrics: a registry (``register_feature_extractor``), the offline
EfficientNet-Lite0, torch-fidelity-compatible Inception-v3 and VGG16 from a weights file, and a domain
extractor (penultimate layer of a classifier). ``extract_features`` turns images into features.

``extract_features(images, extractor)`` takes a registered name or a :class:`FeatureExtractorSpec` object.
A run holds its own extractors as objects (``domain_extractor``, ``weights_extractor`` /
``inception_v3_extractor`` / ``vgg16_extractor``), so nothing of one seed stays in process-global state;
the ``register_*`` functions put the same objects in the registry by name.
"""

import os
from collections.abc import Callable

from medsyn.metrics.features.domain import domain_extractor, register_domain_extractor
from medsyn.metrics.features.extract import extract_features
from medsyn.metrics.features.inception_v3 import inception_v3_extractor, register_inception_v3
from medsyn.metrics.features.registry import (
    BUILTIN_EXTRACTORS,
    FeatureExtractorSpec,
    get_feature_extractor,
    load_feature_extractor,
    register_feature_extractor,
    registered_feature_extractors,
    unregister_feature_extractor,
)
from medsyn.metrics.features.vgg16 import register_vgg16, vgg16_extractor

# architecture -> constructor of its extractor from a user-given weights file
WEIGHTS_FILE_EXTRACTORS: dict[str, Callable[[str | os.PathLike, str], FeatureExtractorSpec]] = {
    "inception_v3": inception_v3_extractor,
    "vgg16": vgg16_extractor,
}


def weights_extractor(name: str, weights_path: str | os.PathLike) -> FeatureExtractorSpec:
    """The extractor ``name`` ("inception_v3" or "vgg16") with the weights at ``weights_path``, loaded now
    (a wrong file fails here) and NOT registered: pass the object to ``extract_features``."""
    if name not in WEIGHTS_FILE_EXTRACTORS:
        raise ValueError(f"no weights-file extractor {name!r}; known: {sorted(WEIGHTS_FILE_EXTRACTORS)}")
    return WEIGHTS_FILE_EXTRACTORS[name](weights_path, name)


__all__ = [
    "BUILTIN_EXTRACTORS",
    "FeatureExtractorSpec",
    "WEIGHTS_FILE_EXTRACTORS",
    "domain_extractor",
    "extract_features",
    "get_feature_extractor",
    "inception_v3_extractor",
    "load_feature_extractor",
    "register_domain_extractor",
    "register_feature_extractor",
    "register_inception_v3",
    "register_vgg16",
    "registered_feature_extractors",
    "unregister_feature_extractor",
    "vgg16_extractor",
    "weights_extractor",
]
