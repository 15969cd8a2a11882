"""PSNR / SSIM / LPIPS of true pairs (each real image and its reconstruction): scikit-image per pair as the
oracle, the batch walk independent of the batch size, the labels handed to reconstruct in order, finite
PSNR for identical pairs, and LPIPS as the mean of the per-pair distances."""

import math

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from medsyn.metrics.features.vgg16 import vgg16_convolutions
from medsyn.metrics.lpips import CHANNELS, LPIPSVGG16, lpips_distances
from medsyn.metrics.true_pairs import PSNR_MAX_DB, mean_pair_scores, score_true_pairs, true_pair_psnr_ssim


def _noisy_reconstructor(noise):
    calls = []

    def reconstruct(batch, labels):
        start = sum(len(c) for c in calls)
        calls.append(labels.clone())
        return (batch + noise[start:start + len(batch)]).clamp(0, 1)

    return reconstruct, calls


@pytest.mark.parametrize("channels", [1, 3])
def test_true_pairs_equal_scikit_image_per_pair_means_for_any_batch_size(channels):
    generator = torch.Generator().manual_seed(channels)
    images = torch.rand(7, channels, 12, 12, generator=generator)
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0])
    noise = 0.1 * torch.randn(7, channels, 12, 12, generator=generator)
    expected_reconstructions = (images + noise).clamp(0, 1).numpy()
    expected_psnr = np.mean([peak_signal_noise_ratio(images[i].numpy(), expected_reconstructions[i], data_range=1.0)
                             for i in range(7)])
    expected_ssim = np.mean([structural_similarity(images[i].numpy(), expected_reconstructions[i], data_range=1.0,
                                                   channel_axis=0) for i in range(7)])
    results = []
    for batch_size in (1, 3, 64):
        reconstruct, calls = _noisy_reconstructor(noise)
        results.append(score_true_pairs(images, labels, reconstruct, batch_size=batch_size))
        assert torch.equal(torch.cat(calls), labels)  # each batch with its own labels, in order
        assert len(calls) == math.ceil(7 / batch_size)
    for scores in results:
        assert set(scores) == {"psnr", "ssim"}
        assert scores["psnr"] == pytest.approx(expected_psnr, rel=1e-9)
        assert scores["ssim"] == pytest.approx(expected_ssim, rel=1e-6)
    assert true_pair_psnr_ssim(images, torch.from_numpy(expected_reconstructions)) == pytest.approx(results[0])


def test_identical_pairs_have_a_finite_psnr_and_ssim_one():
    images = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    scores = score_true_pairs(images, torch.zeros(3, dtype=torch.int64), lambda batch, labels: batch.clone())
    assert scores["psnr"] == PSNR_MAX_DB == pytest.approx(100.0)
    assert scores["ssim"] == pytest.approx(1.0)


def test_lpips_of_true_pairs_is_the_mean_of_the_pair_distances():
    torch.manual_seed(0)
    network = LPIPSVGG16(vgg16_convolutions(), [torch.rand(1, c, 1, 1) for c in CHANNELS]).eval()
    generator = torch.Generator().manual_seed(1)
    images = torch.rand(3, 3, 16, 16, generator=generator)
    noise = 0.2 * torch.randn(3, 3, 16, 16, generator=generator)
    reconstruct, _calls = _noisy_reconstructor(noise)
    scores = score_true_pairs(images, torch.zeros(3, dtype=torch.int64), reconstruct, lpips=network, batch_size=2)
    expected = lpips_distances(network, images, (images + noise).clamp(0, 1)).double().mean()
    assert scores["lpips"] == pytest.approx(float(expected), rel=1e-5)
    assert set(scores) == {"psnr", "ssim", "lpips"}


def test_bad_reconstructions_and_inputs_are_refused():
    images = torch.rand(4, 1, 8, 8)
    labels = torch.zeros(4, dtype=torch.int64)
    with pytest.raises(ValueError, match=r"reconstruct returned \(2, 1, 8, 8\) for a batch of \(4, 1, 8, 8\)"):
        score_true_pairs(images, labels, lambda batch, _labels: batch[:2])
    with pytest.raises(ValueError, match="4 real images but 3 labels"):
        score_true_pairs(images, labels[:3], lambda batch, _labels: batch)
    with pytest.raises(ValueError, match="no image pairs"):
        mean_pair_scores([])
    with pytest.raises(ValueError, match="same shape"):
        true_pair_psnr_ssim(images, images[:, :, :4])
