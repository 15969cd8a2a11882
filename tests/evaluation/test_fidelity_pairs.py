"""The fidelity suite's pair metrics: LPIPS on the vgg16 extractor's backbone when fidelity.vgg16_weights is
set (skipped with a stated reason otherwise), and paper 001's unpaired set against the real test split."""

import importlib.metadata

import pytest
import torch

from medsyn.data.image_set import ImageSet
from medsyn.evaluation.feature_spaces import FeatureSpaces
from medsyn.evaluation.fidelity_suite import lpips_network_of, true_pair_scores, unpaired_set_scores
from medsyn.metrics.features.spec import FeatureExtractorSpec
from medsyn.metrics.features.vgg16 import VGG16FeatureNet, vgg16_convolutions
from medsyn.metrics.lpips import lpips_distances
from medsyn.metrics.unpaired_set import score_unpaired_set


def _spaces_with_vgg16():
    with torch.device("meta"):
        feature_net = VGG16FeatureNet()  # only its convolutions are used by LPIPS: keep the rest unallocated
    torch.manual_seed(0)
    feature_net.features = vgg16_convolutions()
    spec = FeatureExtractorSpec(name="vgg16", build=lambda: feature_net, input_size=224, mean=(0.5,) * 3,
                                std=(0.5,) * 3, feature_dim=4096)
    return FeatureSpaces(names=("vgg16",), dcr=None, batch_size=8, objects={"vgg16": spec}), feature_net


def _lpips_installed():
    try:
        importlib.metadata.distribution("lpips")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def test_lpips_is_skipped_with_a_reason_without_vgg16_weights_or_on_small_images():
    network, why = lpips_network_of(FeatureSpaces(names=(), dcr=None, batch_size=8), (1, 32, 32))
    assert network is None and "fidelity.vgg16_weights is not set" in why
    spaces, _net = _spaces_with_vgg16()
    network, why = lpips_network_of(spaces, (1, 8, 8))
    assert network is None and "at least 16x16, these are 8x8" in why


def test_lpips_is_skipped_with_a_reason_without_the_lpips_package(monkeypatch):
    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", not_installed)
    network, why = lpips_network_of(_spaces_with_vgg16()[0], (3, 16, 16))
    assert network is None and why.startswith("skipped: LPIPS needs the linear layers shipped in the lpips package")


@pytest.mark.skipif(not _lpips_installed(), reason="the lpips package (its linear layers) is not installed")
def test_lpips_uses_the_vgg16_extractor_backbone_and_scores_both_pair_kinds():
    spaces, feature_net = _spaces_with_vgg16()
    network, why = lpips_network_of(spaces, (1, 16, 16))
    assert why is None and network.convolutions[0] is feature_net.features[0]
    generator = torch.Generator().manual_seed(1)
    test = ImageSet(torch.rand(4, 1, 16, 16, generator=generator), torch.tensor([0, 1, 0, 1]), ("a", "b"))
    synthetic = ImageSet(torch.rand(6, 1, 16, 16, generator=generator), torch.tensor([1, 1, 1, 0, 0, 0]), ("a", "b"))

    unpaired = unpaired_set_scores(test, synthetic, lpips=network)
    assert unpaired == pytest.approx(score_unpaired_set(test.images, test.labels, synthetic.images, synthetic.labels,
                                                        lpips=network))
    # class-matched: real 0, 2 (class a) with synthetic 3, 4; real 1, 3 (class b) with synthetic 0, 1
    expected = lpips_distances(network, test.images[[0, 2, 1, 3]], synthetic.images[[3, 4, 0, 1]]).double().mean()
    assert unpaired["lpips"] == pytest.approx(float(expected), rel=1e-5)

    class Blurs:
        def reconstruct(self, images, labels):
            return torch.nn.functional.avg_pool2d(images, 3, 1, 1)

    pairs = true_pair_scores(Blurs(), test, lpips=network)
    expected = lpips_distances(network, test.images, Blurs().reconstruct(test.images, test.labels)).double().mean()
    assert set(pairs) == {"psnr", "ssim", "lpips"} and pairs["lpips"] == pytest.approx(float(expected), rel=1e-5)
    assert true_pair_scores(object(), test, lpips=network) is None

