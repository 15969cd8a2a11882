"""Feature extractors for fidelity metrics: a registry (``register_feature_extractor``), the offline
EfficientNet-Lite0, torch-fidelity-compatible Inception-v3 and VGG16 from a weights file, and a domain
extractor (penultimate layer of a classifier). ``extract_features`` turns images into features."""

from medsyn.metrics.features.domain import register_domain_extractor
from medsyn.metrics.features.extract import extract_features
from medsyn.metrics.features.inception_v3 import register_inception_v3
from medsyn.metrics.features.registry import (
    FeatureExtractorSpec,
    get_feature_extractor,
    load_feature_extractor,
    register_feature_extractor,
    registered_feature_extractors,
    unregister_feature_extractor,
)
from medsyn.metrics.features.vgg16 import register_vgg16

__all__ = [
    "FeatureExtractorSpec",
    "extract_features",
    "get_feature_extractor",
    "load_feature_extractor",
    "register_domain_extractor",
    "register_feature_extractor",
    "register_inception_v3",
    "register_vgg16",
    "registered_feature_extractors",
    "unregister_feature_extractor",
]
