"""Privacy gallery: the most similar synthetic images and their nearest training images (the figure is
tested in tests/report/test_privacy_figures.py)."""

import numpy as np
import pytest

from medsyn.metrics.privacy import privacy_gallery, ssim_max_privacy


@pytest.fixture
def scored():
    rng = np.random.default_rng(4)
    real = rng.random((6, 1, 10, 10)).astype(np.float32)
    synthetic = rng.random((12, 1, 10, 10)).astype(np.float32)
    synthetic[3] = real[2]
    synthetic[8] = np.clip(real[5] + 0.02, 0, 1)
    return synthetic, real, ssim_max_privacy(synthetic, real, q=5, repeats=2)


def test_gallery_orders_by_max_ssim_and_pairs_nearest_real(scored):
    synthetic, real, ssim = scored
    gallery = privacy_gallery(synthetic, real, ssim, top=4)
    assert gallery["synthetic_indices"][:2] == [3, 8]
    assert gallery["real_indices"][:2] == [2, 5]
    assert gallery["values"] == sorted(gallery["values"], reverse=True)
    assert gallery["values"][0] == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_array_equal(gallery["synthetic_images"][0], synthetic[3])
    np.testing.assert_array_equal(gallery["real_images"][1], real[5])
    expected_real = [ssim["per_image_indices"][i] for i in gallery["synthetic_indices"]]
    assert gallery["real_indices"] == expected_real
    assert privacy_gallery(synthetic, real, ssim, top=50)["synthetic_indices"].__len__() == 12


def test_bad_inputs(scored):
    synthetic, real, ssim = scored
    with pytest.raises(ValueError, match="top"):
        privacy_gallery(synthetic, real, ssim, top=0)
    with pytest.raises(ValueError, match="ssim_result holds 12"):
        privacy_gallery(synthetic[:5], real, ssim)
    with pytest.raises(ValueError, match="ssim_result must be"):
        privacy_gallery(synthetic, real, {"nope": 1})
