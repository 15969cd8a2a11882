import numpy as np
import pytest
import torch
from skimage.transform import resize as skimage_resize
from sklearn.datasets import load_digits

from medsyn.data.digits import load_digits_images


def test_digits_shape_range_labels():
    images = load_digits_images(32)
    assert images.images.shape == (1797, 1, 32, 32)
    assert images.images.dtype == torch.float32
    assert float(images.images.min()) == 0.0 and float(images.images.max()) <= 1.0
    assert images.class_names == tuple("0123456789")
    assert images.source == "sklearn-digits"
    assert images.class_counts() == np.bincount(load_digits().target).tolist()


def test_digits_native_size_is_the_raw_values_over_16():
    raw = load_digits()
    images = load_digits_images(8)
    np.testing.assert_allclose(images.images[:, 0].numpy(), raw.images / 16.0, atol=1e-7)
    np.testing.assert_array_equal(images.labels.numpy(), raw.target)


def test_digits_upsampling_matches_skimage_bilinear():
    # Independent oracle: skimage's order-1 (bilinear) resize with edge mode, pixel centres aligned as torch's
    # align_corners=False.
    raw = load_digits().images[:5] / 16.0
    ours = load_digits_images(32).images[:5, 0].numpy()
    for index in range(5):
        expected = skimage_resize(raw[index], (32, 32), order=1, mode="edge", anti_aliasing=False)
        np.testing.assert_allclose(ours[index], expected, atol=1e-5)


def test_digits_downsampling_is_antialiased_and_in_range():
    small = load_digits_images(4).images
    assert small.shape == (1797, 1, 4, 4)
    # Antialiased 2x shrink of an 8x8 image averages 2x2 blocks (triangle filter over 4 taps), so the mean
    # intensity is preserved closely.
    raw_mean = load_digits().images.mean() / 16.0
    assert abs(float(small.mean()) - raw_mean) < 0.02


@pytest.mark.parametrize("size", [0, -3, 2.5, True])
def test_digits_bad_size(size):
    with pytest.raises(ValueError, match="size"):
        load_digits_images(size)
