"""The pure-torch SSIM twin (oracle + fallback) against scikit-image, and its blocking/tie conventions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from medsyn.kernels.ssim_torch import ssim_max_torch, ssim_pairs_torch
from medsyn.metrics.ssim import ssim_window


def _args(window: str, win_size=None, data_range: float = 1.0):
    win = ssim_window(window, win_size, data_range)
    return torch.from_numpy(win.weights), win.covariance_scale, win.c1, win.c2


@pytest.mark.parametrize("window", ["uniform", "gaussian"])
def test_pairs_match_skimage(window):
    rng = np.random.default_rng(0)
    a, b = rng.random((4, 2, 19, 25)), rng.random((4, 2, 19, 25))
    b[1] = a[1]
    b[2] = 0.5  # constant image
    kwargs = {"data_range": 1.0, "channel_axis": 0}
    if window == "gaussian":
        kwargs.update(gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    expected = [structural_similarity(x, y, **kwargs) for x, y in zip(a, b)]
    got = ssim_pairs_torch(torch.from_numpy(a), torch.from_numpy(b), *_args(window))
    assert got.dtype == torch.float64
    np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=1e-12)
    assert got[1] == pytest.approx(1.0, abs=1e-12)


def test_max_is_independent_of_block_sizes_and_breaks_ties_by_index():
    rng = np.random.default_rng(1)
    syn = torch.from_numpy(rng.random((5, 1, 16, 16)))
    real = torch.from_numpy(rng.random((9, 1, 16, 16)))
    real[6] = syn[2]
    real[7] = syn[2]
    real[8] = syn[4]
    reference = ssim_max_torch(syn, real, *_args("uniform"), top_k=4)
    for blocks in [(1, 1), (2, 3), (5, 9), (64, 64)]:
        values, indices = ssim_max_torch(syn, real, *_args("uniform"), top_k=4,
                                         synthetic_block=blocks[0], real_block=blocks[1])
        assert torch.equal(values, reference[0])
        assert torch.equal(indices, reference[1])
    assert reference[1][2, :2].tolist() == [6, 7]
    assert reference[1][4, 0] == 8
    # every listed value is the SSIM of that pair
    pairs = ssim_pairs_torch(syn.repeat_interleave(4, 0), real[reference[1].reshape(-1)], *_args("uniform"))
    np.testing.assert_allclose(pairs.reshape(5, 4).numpy(), reference[0].numpy(), atol=1e-12)
