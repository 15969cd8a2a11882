"""Domain extractor: penultimate features of a classifier, held by a run as an object or registered by name."""

import pytest
import torch
from torch import nn

from medsyn.metrics.features.domain import PenultimateFeatures, domain_extractor, register_domain_extractor
from medsyn.metrics.features.extract import extract_features
from medsyn.metrics.features.registry import registered_feature_extractors, unregister_feature_extractor


def small_classifier(seed: int = 0):
    torch.manual_seed(seed)
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


def test_domain_extractor_object_is_not_registered_and_belongs_to_its_classifier():
    registered = registered_feature_extractors()
    images = torch.rand(4, 1, 12, 12, generator=torch.Generator().manual_seed(3))
    per_seed = []
    for seed in (0, 1):  # one classifier per seed, both named "domain"
        classifier = small_classifier(seed)
        spec = domain_extractor(classifier, image_shape=(1, 12, 12))
        assert spec.name == "domain" and spec.feature_dim == 7 and spec.input_channels == 1
        features = extract_features(images, spec, batch_size=3)
        with torch.no_grad():
            expected = classifier.eval()[:6](images)
        torch.testing.assert_close(features, expected)
        per_seed.append(features)
    assert registered_feature_extractors() == registered  # nothing process-global changed
    assert not torch.allclose(per_seed[0], per_seed[1])


def test_held_object_wins_over_a_registered_extractor_of_the_same_name():
    register_domain_extractor("domain_same_name", small_classifier(0), image_shape=(1, 12, 12))
    try:
        held = domain_extractor(small_classifier(1), image_shape=(1, 12, 12), name="domain_same_name")
        images = torch.rand(2, 1, 12, 12)
        by_name, by_object = extract_features(images, "domain_same_name"), extract_features(images, held)
        with torch.no_grad():
            expected = small_classifier(1).eval()[:6](images)
        torch.testing.assert_close(by_object, expected)
        assert not torch.allclose(by_name, by_object)
    finally:
        unregister_feature_extractor("domain_same_name")


def test_domain_extractor_checks_the_image_shape():
    with pytest.raises(ValueError, match=r"image_shape must be \(C, H, W\)"):
        domain_extractor(small_classifier(), image_shape=(12, 12))
    with pytest.raises(ValueError, match="square"):
        domain_extractor(small_classifier(), image_shape=(1, 12, 10))
