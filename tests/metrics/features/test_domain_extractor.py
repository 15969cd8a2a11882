"""Domain extractor: penultimate features of a classifier, registered under a name."""

import pytest
import torch
from torch import nn

from medsyn.metrics.features.domain import PenultimateFeatures, register_domain_extractor
from medsyn.metrics.features.extract import extract_features
from medsyn.metrics.features.registry import unregister_feature_extractor


def small_classifier():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 7),
        nn.ReLU(), nn.Linear(7, 3),
    )


def test_penultimate_is_input_of_last_linear():
    classifier = small_classifier().eval()
    images = torch.rand(5, 1, 12, 12)
    features = PenultimateFeatures(classifier)(images)
    with torch.no_grad():
        expected = classifier[:6](images)  # everything up to the last Linear
    assert features.shape == (5, 7)
    torch.testing.assert_close(features, expected)


def test_named_layer_and_bad_layer():
    classifier = small_classifier()
    features = PenultimateFeatures(classifier, layer_name="4")(torch.rand(2, 1, 12, 12))
    assert features.shape == (2, 16)
    with pytest.raises(ValueError, match="layer_name"):
        PenultimateFeatures(classifier, layer_name="nope")
    with pytest.raises(ValueError, match="nn.Linear"):
        PenultimateFeatures(nn.Conv2d(1, 1, 1))


def test_registered_domain_extractor_runs_through_extract_features():
    classifier = small_classifier()
    register_domain_extractor("domain_test", classifier, image_shape=(1, 12, 12))
    try:
        images = torch.rand(4, 1, 12, 12)
        features = extract_features(images, "domain_test", batch_size=3)
        with torch.no_grad():
            expected = classifier.eval()[:6](images)
        assert features.shape == (4, 7)
        torch.testing.assert_close(features, expected)
        with pytest.raises(ValueError, match="1 channel"):
            extract_features(torch.rand(2, 3, 12, 12), "domain_test")
    finally:
        unregister_feature_extractor("domain_test")
