"""The embedded default data set: scikit-learn's handwritten digits, upsampled. Needs no download.

1797 grey images of 8x8 pixels with values 0..16, 10 classes (the digits 0-9), shipped inside scikit-learn
(UCI "Optical Recognition of Handwritten Digits"). Small enough that the quickstart trains three generators
and scores them on a laptop in minutes.
"""

from __future__ import annotations

import numpy as np
import torch

from medsyn.data.image_set import ImageSet
from medsyn.data.pixels import resize_images

__all__ = ["load_digits_images", "DIGITS_MAX_VALUE"]

# sklearn's digits count set pixels in 4x4 blocks of a 32x32 bitmap, so each value lies in 0..16.
DIGITS_MAX_VALUE = 16.0


def load_digits_images(size: int = 32) -> ImageSet:
    """All 1797 digits as float32 [1797, 1, size, size] in [0, 1], labels int64 in 0..9, classes "0".."9".

    Values are divided by 16 and upsampled bilinearly (antialiased if ``size < 8``).
    """
    from sklearn.datasets import load_digits

    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise ValueError(f"size must be a positive integer, got {size!r}")
    digits = load_digits()
    images = torch.from_numpy(np.asarray(digits.images, dtype=np.float32) / DIGITS_MAX_VALUE).unsqueeze(1)
    labels = torch.from_numpy(np.asarray(digits.target, dtype=np.int64))
    return ImageSet(
        images=resize_images(images, size).contiguous(),
        labels=labels,
        class_names=tuple(str(digit) for digit in range(10)),
        source="sklearn-digits",
    )
