"""Paper 001's set-level PSNR / SSIM: class-matched pairs of unrelated images, scikit-image per pair as the
oracle, and the conventions that make it a set similarity rather than a reconstruction error."""

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from medsyn.metrics.true_pairs import PSNR_MAX_DB
from medsyn.metrics.unpaired_set import score_unpaired_set, unpaired_set_pairs


def test_pairs_are_the_first_images_of_each_class_in_both_sets():
    real_labels = torch.tensor([0, 1, 0, 2, 1])
    synthetic_labels = torch.tensor([1, 1, 0, 0, 0, 3])
    real_index, synthetic_index = unpaired_set_pairs(real_labels, synthetic_labels)
    # class 0: real 0, 2 with synthetic 2, 3; class 1: real 1, 4 with synthetic 0, 1; class 2 and 3 unmatched
    assert real_index.tolist() == [0, 2, 1, 4] and synthetic_index.tolist() == [2, 3, 0, 1]
    assert torch.equal(real_labels[real_index], synthetic_labels[synthetic_index])
    with pytest.raises(ValueError, match=r"needs a class with both.*\[0\].*\[1\]"):
        unpaired_set_pairs(torch.tensor([0, 0]), torch.tensor([1]))
    with pytest.raises(ValueError, match="real_labels must be an int64 tensor"):
        unpaired_set_pairs(torch.tensor([0.0]), torch.tensor([0]))


def test_scores_equal_scikit_image_over_the_class_matched_pairs():
    generator = torch.Generator().manual_seed(0)
    real, synthetic = torch.rand(5, 3, 10, 10, generator=generator), torch.rand(6, 3, 10, 10, generator=generator)
    real_labels, synthetic_labels = torch.tensor([0, 1, 0, 2, 1]), torch.tensor([1, 1, 0, 0, 0, 3])
    pairs = [(0, 2), (2, 3), (1, 0), (4, 1)]
    expected_psnr = np.mean([peak_signal_noise_ratio(real[r].numpy(), synthetic[s].numpy(), data_range=1.0)
                             for r, s in pairs])
    expected_ssim = np.mean([structural_similarity(real[r].numpy(), synthetic[s].numpy(), data_range=1.0,
                                                   channel_axis=0) for r, s in pairs])
    for batch_size in (1, 3, 64):
        scores = score_unpaired_set(real, real_labels, synthetic, synthetic_labels, batch_size=batch_size)
        assert scores["psnr"] == pytest.approx(expected_psnr, rel=1e-9)
        assert scores["ssim"] == pytest.approx(expected_ssim, rel=1e-6)
    with pytest.raises(ValueError, match="one label per image"):
        score_unpaired_set(real, real_labels[:4], synthetic, synthetic_labels)


def test_a_copy_of_the_held_out_set_scores_as_a_perfect_reconstruction():
    real = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    scores = score_unpaired_set(real, labels, real.clone(), labels)
    assert scores["psnr"] == pytest.approx(PSNR_MAX_DB) and scores["ssim"] == pytest.approx(1.0)


def test_smooth_average_images_score_a_higher_psnr_than_varied_real_ones():
    """What paper 001 observes for the VAE: the set-level PSNR rewards blur. Per class, the class-mean image
    (one blurry image repeated) beats held-out-like images of the same class that are as sharp as the real."""
    generator = torch.Generator().manual_seed(2)
    base = torch.rand(2, 1, 16, 16, generator=generator)
    labels = torch.tensor([0] * 20 + [1] * 20)
    real = (base[labels] + 0.25 * torch.randn(40, 1, 16, 16, generator=generator)).clamp(0, 1)
    varied = (base[labels] + 0.25 * torch.randn(40, 1, 16, 16, generator=generator)).clamp(0, 1)
    class_means = torch.stack([real[labels == c].mean(0) for c in (0, 1)])[labels]
    sharp = score_unpaired_set(real, labels, varied, labels)
    smooth = score_unpaired_set(real, labels, class_means, labels)
    assert smooth["psnr"] > sharp["psnr"] + 2.0
