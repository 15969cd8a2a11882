"""ssim_max (cpp backend) returns float64-exact results at every image width the vectorised fast phase
handles differently: valid widths below one vector group (scalar path), an exact multiple of the group,
and a remainder (the shifted last group), for both windows, several channels and top_k > 1.

Oracles: the kernel's own float64 pair path (``ssim_pairs``, no fast phase, no top-k) over every pair,
brute force, and scikit-image (uniform window) to 1e-5.
"""

from __future__ import annotations

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from medsyn.kernels.dispatch import cpu_kernels
from medsyn.metrics import ssim_max
from medsyn.metrics.ssim import ssim_window

# valid width = width - win + 1; the fast phase works in groups of 16 outputs.
WIDTHS = {"uniform": (20, 22, 29, 45), "gaussian": (24, 26, 33)}


def images(count: int, channels: int, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """Smooth random images [count, C, H, W] in [0, 1] with near-duplicates (SSIM values close together)."""
    base = rng.random((1, channels, height, width)).astype(np.float32)
    noise = rng.random((count, channels, height, width)).astype(np.float32)
    weights = np.linspace(0.05, 0.6, count, dtype=np.float32)[:, None, None, None]
    return np.clip(base * (1 - weights) + noise * weights, 0, 1).astype(np.float32)


def brute_force_top_k(syn: np.ndarray, real: np.ndarray, window: str, top_k: int):
    """float64 SSIM of every pair through the kernel's exact path, then a stable sort (ties: smaller index)."""
    win = ssim_window(window)
    kernels = cpu_kernels()
    q, n = syn.shape[0], real.shape[0]
    a = np.ascontiguousarray(np.repeat(syn, n, axis=0))
    b = np.ascontiguousarray(np.tile(real, (q, 1, 1, 1)))
    matrix = kernels.ssim_pairs(a, b, win.weights, win.covariance_scale, win.c1, win.c2).reshape(q, n)
    order = np.argsort(-matrix, axis=1, kind="stable")[:, :top_k]
    return np.take_along_axis(matrix, order, axis=1), order, matrix


@pytest.mark.parametrize("window", sorted(WIDTHS))
@pytest.mark.parametrize("channels", [1, 3])
def test_scan_equals_float64_brute_force_at_every_width(window, channels):
    rng = np.random.default_rng(7)
    for width in WIDTHS[window]:
        syn = images(5, channels, 19 if window == "uniform" else 23, width, rng)
        real = images(9, channels, syn.shape[2], width, rng)
        real[4] = syn[2]  # an exact duplicate: SSIM 1 must win with its index
        result = ssim_max(syn, real, window=window, top_k=3, backend="cpp")
        values, indices, matrix = brute_force_top_k(syn, real, window, 3)
        np.testing.assert_array_equal(result.top_k_values.numpy(), values, err_msg=f"width={width}")
        np.testing.assert_array_equal(result.top_k_indices.numpy(), indices, err_msg=f"width={width}")
        assert result.indices[2].item() == 4 and result.values[2].item() == pytest.approx(1.0, abs=1e-12)
        if window == "uniform":
            axis = {} if channels == 1 else {"channel_axis": 0}
            sk = [
                structural_similarity(
                    syn[s].astype(np.float64).squeeze(0) if channels == 1 else syn[s].astype(np.float64),
                    real[r].astype(np.float64).squeeze(0) if channels == 1 else real[r].astype(np.float64),
                    data_range=1.0,
                    **axis,
                )
                for s in range(syn.shape[0])
                for r in range(real.shape[0])
            ]
            np.testing.assert_allclose(matrix.ravel(), sk, atol=1e-5)


def test_scan_is_independent_of_the_order_of_the_real_set():
    rng = np.random.default_rng(3)
    syn, real = images(4, 1, 40, 45, rng), images(21, 1, 40, 45, rng)
    permutation = rng.permutation(real.shape[0])
    direct = ssim_max(syn, real, top_k=4, backend="cpp")
    permuted = ssim_max(syn, real[permutation], top_k=4, backend="cpp")
    np.testing.assert_array_equal(direct.top_k_values.numpy(), permuted.top_k_values.numpy())
    np.testing.assert_array_equal(direct.top_k_indices.numpy(), permutation[permuted.top_k_indices.numpy()])


def test_real_set_larger_than_one_statistics_chunk():
    # 256 px: the scan holds the statistics of 262 images at a time (128 MiB; mean and var_term in float32,
    # rows of 250 valid pixels padded to 256); 265 real images need two chunks that share one buffer, the
    # second one partly filled.
    rng = np.random.default_rng(11)
    syn, real = images(2, 1, 256, 256, rng), images(265, 1, 256, 256, rng)
    real[263] = syn[1]
    result = ssim_max(syn, real, top_k=2, backend="cpp")
    values, indices, _ = brute_force_top_k(syn, real, "uniform", 2)
    np.testing.assert_array_equal(result.top_k_values.numpy(), values)
    np.testing.assert_array_equal(result.top_k_indices.numpy(), indices)
    assert result.indices[1].item() == 263


@pytest.mark.parametrize("channels", [1, 3])
def test_pairs_abandoned_part_way_keep_the_scan_exact(channels):
    """Real sets with near-copies of the synthetic images in every tile of 4 among noise: once a copy is scored,
    the noise pairs fall below the k-th best lower bound part-way through the 16-column blocks (valid width 58:
    blocks of 16 columns, a partial last one) and the box-7 kernel stops scoring them. Still float64-exact."""
    rng = np.random.default_rng(5)
    syn = rng.random((4, channels, 30, 64)).astype(np.float32)
    real = rng.random((24, channels, 30, 64)).astype(np.float32)
    for r in range(0, 24, 3):
        real[r] = np.clip(syn[(r // 3) % 4] + rng.normal(0, 0.02, syn.shape[1:]), 0, 1).astype(np.float32)
    for top_k in (1, 2, 3):
        result = ssim_max(syn, real, window="uniform", top_k=top_k, backend="cpp")
        values, indices, _ = brute_force_top_k(syn, real, "uniform", top_k)
        np.testing.assert_array_equal(result.top_k_values.numpy(), values, err_msg=f"top_k={top_k}")
        np.testing.assert_array_equal(result.top_k_indices.numpy(), indices, err_msg=f"top_k={top_k}")
