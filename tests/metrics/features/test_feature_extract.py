"""extract_features: shapes, grey->RGB, resizing, batch-size independence, registered names and held objects,
bad input and bad specs."""

import numpy as np
import pytest
import torch
from torch import nn

from medsyn.metrics.features.extract import extract_features, prepare_images
from medsyn.metrics.features.registry import (
    FeatureExtractorSpec,
    get_feature_extractor,
    register_feature_extractor,
    registered_feature_extractors,
    unregister_feature_extractor,
)


class MeanPerChannel(nn.Module):
    """A transparent extractor: per-channel means, so expected features are computable by hand."""

    def forward(self, x):
        return x.mean(dim=(2, 3))


@pytest.fixture
def toy_extractor():
    spec = register_feature_extractor(
        FeatureExtractorSpec("toy_means", MeanPerChannel, 8, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), 3),
        overwrite=True,
    )
    yield spec
    unregister_feature_extractor("toy_means")


def test_grey_images_become_rgb_and_are_normalised(toy_extractor):
    rng = np.random.default_rng(0)
    grey = rng.random((5, 1, 8, 8)).astype(np.float32)  # already at input size: no resize
    features = extract_features(grey, "toy_means", batch_size=2)
    expected = (grey.mean(axis=(1, 2, 3)) - 0.5) / 0.25
    assert features.dtype == torch.float32 and features.shape == (5, 3)
    for channel in range(3):
        np.testing.assert_allclose(features[:, channel].numpy(), expected, atol=1e-6)


def test_resize_to_input_size_preserves_a_constant_image(toy_extractor):
    images = torch.full((2, 3, 20, 13), 0.75)
    features = extract_features(images, "toy_means")
    np.testing.assert_allclose(features.numpy(), np.full((2, 3), (0.75 - 0.5) / 0.25), atol=1e-6)


def test_features_are_ordinary_tensors(toy_extractor):
    features = extract_features(torch.rand(2, 3, 8, 8), "toy_means")
    assert not features.is_inference() and not features.requires_grad
    features.mul_(2.0)  # downstream code may normalise in place


def test_a_held_spec_runs_without_registering():
    spec = FeatureExtractorSpec("toy_held", MeanPerChannel, 8, (0.5,) * 3, (0.25,) * 3, 3)
    images = torch.full((2, 1, 8, 8), 0.75)
    np.testing.assert_allclose(extract_features(images, spec).numpy(), np.full((2, 3), 1.0), atol=1e-6)
    assert "toy_held" not in registered_feature_extractors()
    with pytest.raises(ValueError, match="extractor_name must be one of"):
        extract_features(images, "toy_held")


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"name": ""}, "spec.name must be a non-empty identifier"),
        ({"name": "has space"}, "spec.name must be a non-empty identifier"),
        ({"build": None}, "spec.build of extractor 'toy' must be callable"),
        ({"input_size": 0}, "spec.input_size"),
        ({"feature_dim": 0}, "spec.feature_dim"),
        ({"mean": (0.5,)}, "input_channels=3 entries"),
        ({"std": (0.25, 0.0, 0.25)}, "std > 0"),
    ],
)
def test_bad_specs_raise_when_made(changes, match):
    fields = {"name": "toy", "build": MeanPerChannel, "input_size": 8, "mean": (0.5,) * 3, "std": (0.25,) * 3,
              "feature_dim": 3}
    with pytest.raises(ValueError, match=match):
        FeatureExtractorSpec(**{**fields, **changes})


def test_build_must_return_a_module():
    spec = FeatureExtractorSpec("not_a_module", lambda: "oops", 8, (0.5,) * 3, (0.25,) * 3, 3)
    with pytest.raises(ValueError, match=r"build\(\) of extractor 'not_a_module' returned str"):
        extract_features(torch.rand(1, 3, 8, 8), spec)


def test_prepare_images_output_shape():
    out = prepare_images(torch.rand(2, 1, 32, 32), 224, (0.1,) * 3, (0.2,) * 3)
    assert out.shape == (2, 3, 224, 224)


def test_effnet_features_do_not_depend_on_batch_size():
    images = torch.rand(3, 1, 32, 32, generator=torch.Generator().manual_seed(1))
    one = extract_features(images, "effnet_lite0", batch_size=1)
    all_at_once = extract_features(images, "effnet_lite0", batch_size=3)
    assert one.shape == (3, 1280)
    torch.testing.assert_close(one, all_at_once, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(one[0], one[1])  # different images, different features


def test_registry_lists_builtin_and_rejects_unknown():
    assert "effnet_lite0" in registered_feature_extractors()
    assert get_feature_extractor("effnet_lite0").feature_dim == 1280
    with pytest.raises(ValueError, match="extractor_name.*effnet_lite0"):
        get_feature_extractor("nope")
    with pytest.raises(ValueError, match="already registered"):
        register_feature_extractor(get_feature_extractor("effnet_lite0"))


@pytest.mark.parametrize(
    "images, match",
    [
        (torch.rand(2, 2, 8, 8), "channel"),
        (torch.rand(8, 8), r"\[N,H,W\]"),
        (torch.full((2, 1, 8, 8), float("nan")), "NaN"),
        (torch.rand(0, 1, 8, 8), "empty"),
        (torch.rand(2, 1, 8, 8) * 3, r"\[0, data_range"),
    ],
)
def test_bad_images_raise(toy_extractor, images, match):
    with pytest.raises(ValueError, match=match):
        extract_features(images, "toy_means")


def test_bad_batch_size_and_device(toy_extractor):
    with pytest.raises(ValueError, match="batch_size"):
        extract_features(torch.rand(2, 1, 8, 8), "toy_means", batch_size=0)
    with pytest.raises(ValueError, match="device"):
        extract_features(torch.rand(2, 1, 8, 8), "toy_means", device="potato")


def test_forward_batches_agree_with_whole_batches_and_bad_values_are_refused():
    images = torch.rand(6, 3, 40, 40, generator=torch.Generator().manual_seed(2))
    whole = extract_features(images, "effnet_lite0", batch_size=6, forward_batch_size=None)
    for forward in ("auto", 1, 4):
        torch.testing.assert_close(extract_features(images, "effnet_lite0", batch_size=6,
                                                    forward_batch_size=forward), whole, atol=1e-4, rtol=1e-4)
    for bad in (0, -2, 1.5, True, "all"):
        with pytest.raises(ValueError, match="forward_batch_size"):
            extract_features(images, "effnet_lite0", forward_batch_size=bad)
