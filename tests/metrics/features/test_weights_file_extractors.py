"""Inception-v3 and VGG16 from a user-given weights file: strict loading, features through extract_features
(as a held object and registered by name), and a clear error for a file of the wrong architecture.
Tested with saved random-weight files."""

import numpy as np
import pytest
import torch

from medsyn.metrics.features import weights_extractor
from medsyn.metrics.features.extract import extract_features, prepare_images
from medsyn.metrics.features.inception_v3 import InceptionV3FID, register_inception_v3
from medsyn.metrics.features.registry import (
    load_feature_extractor,
    registered_feature_extractors,
    unregister_feature_extractor,
)
from medsyn.metrics.features.tf1_resize import resize_bilinear_tf1
from medsyn.metrics.features.vgg16 import VGG16FeatureNet, register_vgg16


def _randomised(model):
    torch.manual_seed(0)
    with torch.no_grad():
        for name, buffer in model.named_buffers():
            if name.endswith("running_var"):
                buffer.uniform_(0.5, 1.5)  # non-trivial batch-norm statistics
            elif name.endswith("running_mean"):
                buffer.normal_(0, 0.1)
    return model.eval()


def test_inception_from_random_weight_file(tmp_path):
    model = _randomised(InceptionV3FID())
    path = tmp_path / "inception_random.pth"
    torch.save(model.state_dict(), path)
    assert len(model.state_dict()) == 566 and model.fc.out_features == 1008
    registered = registered_feature_extractors()
    spec = weights_extractor("inception_v3", path)  # an object the run holds: nothing is registered
    assert spec.name == "inception_v3" and registered_feature_extractors() == registered
    images = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    features = extract_features(images, spec, batch_size=1)
    with torch.no_grad():
        expected = model(prepare_images(images, 299, spec.mean, spec.std, "tf1_bilinear"))
    assert features.shape == (2, 2048)
    torch.testing.assert_close(features, expected, atol=1e-4, rtol=1e-4)
    # (x - 128)/128 on the [0,255] scale: a white pixel maps to 127/128, black to -1
    white = prepare_images(torch.ones(1, 3, 299, 299), 299, spec.mean, spec.std)
    assert float(white.max()) == pytest.approx(127 / 128)


def test_vgg16_from_random_weight_file(tmp_path):
    model = VGG16FeatureNet()
    path = tmp_path / "vgg16_random.pth"
    # half precision on disk keeps the test file at 277 MB; loading casts back to float32
    half = {k: v.half() for k, v in model.state_dict().items()}
    torch.save(half, path)
    assert list(half)[:2] == ["features.0.weight", "features.0.bias"]
    assert "classifier.6.weight" in half  # torchvision layout, classifier kept for loading
    register_vgg16(path, name="vgg16_test")
    try:
        loaded = load_feature_extractor("vgg16_test")
        for key in ("features.0.weight", "features.28.bias", "classifier.3.weight"):
            assert loaded.state_dict()[key].dtype == torch.float32
            torch.testing.assert_close(loaded.state_dict()[key], half[key].float())
        # one image is enough here: the extract path (resize, normalise, forward) is checked against a
        # reference forward in the Inception test; a second VGG16 forward would double the test's time
        features = extract_features(torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(2)), "vgg16_test")
        assert features.shape == (1, 4096)
        assert (features >= 0).all() and (features > 0).any()  # fc2 after ReLU, not dead
    finally:
        unregister_feature_extractor("vgg16_test")


def test_wrong_architecture_file_is_a_clear_error(tmp_path):
    wrong = tmp_path / "resnet_like.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7), "fc.weight": torch.zeros(10, 4)}, wrong)
    with pytest.raises(ValueError, match=r"resnet_like\.pth.*InceptionV3FID.*missing key.*Conv2d_1a_3x3"):
        register_inception_v3(wrong)
    with pytest.raises(ValueError, match=r"resnet_like\.pth.*VGG16FeatureNet.*unexpected key.*conv1.weight"):
        register_vgg16(wrong)
    shapes = tmp_path / "bad_shapes.pth"
    state = InceptionV3FID().state_dict()
    state["fc.weight"] = torch.zeros(1000, 2048)
    torch.save(state, shapes)
    with pytest.raises(ValueError, match=r"bad_shapes\.pth.*shape mismatch.*fc.weight"):
        register_inception_v3(shapes)
    not_a_state_dict = tmp_path / "text.pth"
    not_a_state_dict.write_text("hello")
    with pytest.raises(ValueError, match=r"text\.pth"):
        register_vgg16(not_a_state_dict)
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        register_vgg16(tmp_path / "missing.pth")
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        weights_extractor("vgg16", tmp_path / "missing.pth")
    with pytest.raises(ValueError, match=r"no weights-file extractor 'resnet50'; known: \['inception_v3', 'vgg16'\]"):
        weights_extractor("resnet50", wrong)


def test_tf1_resize_matches_tensorflow_rule():
    # TF1 (align_corners=False): output i samples input at i * in/out; 2 -> 4 pixels: 0, 0.5, 1, 1(clamped)
    x = torch.tensor([[[[0.0, 1.0]]]]).expand(1, 1, 2, 2)
    out = resize_bilinear_tf1(x, (4, 4))
    np.testing.assert_allclose(out[0, 0, 0].numpy(), [0.0, 0.5, 1.0, 1.0])
    # identity when sizes agree, downsampling by 2 picks every other pixel
    y = torch.arange(16.0).view(1, 1, 4, 4)
    torch.testing.assert_close(resize_bilinear_tf1(y, (4, 4)), y)
    torch.testing.assert_close(resize_bilinear_tf1(y, (2, 2)), y[:, :, ::2, ::2])
