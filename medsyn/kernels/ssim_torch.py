"""Pure-torch twin of the compiled SSIM-max scan (csrc/cpu/ssim_max.cpp): the oracle of its tests, the
fallback when the extension is missing, and the path on devices without a compiled kernel.

Same formula and conventions as the kernel (see ``medsyn.metrics.ssim``): windowed statistics over the
valid region only (where the window lies inside the image), computed in float64, mean over the map
and the channels; ties in the max go to the smallest real index.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["ssim_max_torch", "ssim_pairs_torch"]


def _filter_valid(planes: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """planes [P, H, W] -> separable windowed mean over the valid region [P, H-win+1, W-win+1]."""
    win = weights.numel()
    x = planes.unsqueeze(1)
    x = F.conv2d(x, weights.view(1, 1, win, 1))
    x = F.conv2d(x, weights.view(1, 1, 1, win))
    return x.squeeze(1)


def _image_stats(
    images: torch.Tensor, weights: torch.Tensor, covariance_scale: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """images float64 [N,C,H,W] -> mean, variance, each [N, C, Hv, Wv]."""
    n, c, h, w = images.shape
    planes = images.reshape(n * c, h, w)
    mean = _filter_valid(planes, weights)
    second = _filter_valid(planes * planes, weights)
    variance = covariance_scale * (second - mean * mean)
    shape = (n, c) + mean.shape[-2:]
    return mean.reshape(shape), variance.reshape(shape)


def _pair_scores(
    x: torch.Tensor,
    y: torch.Tensor,
    stats_x: tuple[torch.Tensor, torch.Tensor],
    stats_y: tuple[torch.Tensor, torch.Tensor],
    weights: torch.Tensor,
    covariance_scale: float,
    c1: float,
    c2: float,
) -> torch.Tensor:
    """Every pair of x [a,C,H,W] and y [b,C,H,W] (float64) -> mean SSIM [a, b]."""
    a, c, h, w = x.shape
    b = y.shape[0]
    products = (x[:, None] * y[None, :]).reshape(a * b * c, h, w)
    cross = _filter_valid(products, weights).reshape(a, b, c, *stats_x[0].shape[-2:])
    mean_x, var_x = (t[:, None] for t in stats_x)
    mean_y, var_y = (t[None, :] for t in stats_y)
    mean_xy = mean_x * mean_y
    covariance = covariance_scale * (cross - mean_xy)
    ssim_map = ((2 * mean_xy + c1) * (2 * covariance + c2)) / (
        (mean_x * mean_x + mean_y * mean_y + c1) * (var_x + var_y + c2)
    )
    return ssim_map.mean(dim=(2, 3, 4))


def ssim_max_torch(
    synthetic: torch.Tensor,
    real: torch.Tensor,
    weights: torch.Tensor,
    covariance_scale: float,
    c1: float,
    c2: float,
    top_k: int = 1,
    *,
    synthetic_block: int = 8,
    real_block: int = 32,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k SSIM of each synthetic image over the real images.

    synthetic [Ns,C,H,W], real [Nr,C,H,W]: float images on one device (already validated).
    weights: separable 1-D window [win] (sums to 1). Returns values float64 [Ns, top_k] (descending)
    and indices int64 [Ns, top_k]; equal values are ordered by increasing real index. Memory grows
    with synthetic_block * real_block, never with Ns * Nr.
    """
    device = synthetic.device
    weights = weights.to(device=device, dtype=torch.float64)
    syn = synthetic.to(torch.float64)
    ref = real.to(torch.float64)
    stats_syn = _image_stats(syn, weights, covariance_scale)
    stats_ref = _image_stats(ref, weights, covariance_scale)
    n_syn, n_ref = syn.shape[0], ref.shape[0]
    best_values = torch.empty(n_syn, 0, dtype=torch.float64, device=device)
    best_indices = torch.empty(n_syn, 0, dtype=torch.int64, device=device)
    for r0 in range(0, n_ref, real_block):
        r1 = min(n_ref, r0 + real_block)
        block_stats = (stats_ref[0][r0:r1], stats_ref[1][r0:r1])
        rows = [
            _pair_scores(
                syn[s0 : s0 + synthetic_block],
                ref[r0:r1],
                (stats_syn[0][s0 : s0 + synthetic_block], stats_syn[1][s0 : s0 + synthetic_block]),
                block_stats,
                weights,
                covariance_scale,
                c1,
                c2,
            )
            for s0 in range(0, n_syn, synthetic_block)
        ]
        block_values = torch.cat(rows, dim=0)
        block_indices = torch.arange(r0, r1, device=device).expand(n_syn, -1)
        # Candidates are in increasing index order, so a stable descending sort breaks ties by index.
        values = torch.cat([best_values, block_values], dim=1)
        indices = torch.cat([best_indices, block_indices], dim=1)
        order = torch.sort(values, dim=1, descending=True, stable=True).indices[:, :top_k]
        best_values = torch.gather(values, 1, order)
        best_indices = torch.gather(indices, 1, order)
    return best_values, best_indices


def ssim_pairs_torch(
    a: torch.Tensor, b: torch.Tensor, weights: torch.Tensor, covariance_scale: float, c1: float, c2: float
) -> torch.Tensor:
    """SSIM of a[i] against b[i]: a, b [N,C,H,W] -> float64 [N]."""
    weights = weights.to(device=a.device, dtype=torch.float64)
    x, y = a.to(torch.float64), b.to(torch.float64)
    stats_x = _image_stats(x, weights, covariance_scale)
    stats_y = _image_stats(y, weights, covariance_scale)
    scores = [
        _pair_scores(x[i : i + 1], y[i : i + 1], (stats_x[0][i : i + 1], stats_x[1][i : i + 1]),
                     (stats_y[0][i : i + 1], stats_y[1][i : i + 1]), weights, covariance_scale, c1, c2)[0, 0]
        for i in range(x.shape[0])
    ]
    return torch.stack(scores)
