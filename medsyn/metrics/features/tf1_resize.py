"""Bilinear resize as TensorFlow 1.x computes it (``tf.image.resize_bilinear``, align_corners=False), which
the Inception-v3 FID reference and torch-fidelity use: output pixel i samples the input at i * in/out
(no half-pixel offset, no antialiasing). PyTorch's ``interpolate`` samples at (i + 0.5) * in/out - 0.5,
which shifts every feature and moves FID; torch-fidelity-compatible extractors need this exact rule."""

from __future__ import annotations

import torch

__all__ = ["resize_bilinear_tf1"]


def _axis(in_size: int, out_size: int, device: torch.device):
    # float64 source positions: exact for the sizes used here, so lo/frac do not depend on float32 rounding
    source = torch.arange(out_size, dtype=torch.float64, device=device) * (in_size / out_size)
    lo = source.floor().long().clamp_max(in_size - 1)
    hi = (lo + 1).clamp_max(in_size - 1)
    return lo, hi, (source - lo.double())


def resize_bilinear_tf1(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """images float [N,C,H,W] -> [N,C,size[0],size[1]] by TF1 bilinear interpolation."""
    if images.ndim != 4 or not images.dtype.is_floating_point:
        raise ValueError(f"images must be a float tensor [N,C,H,W], got {images.dtype} {tuple(images.shape)}")
    y_lo, y_hi, dy = _axis(images.shape[2], size[0], images.device)
    x_lo, x_hi, dx = _axis(images.shape[3], size[1], images.device)
    dx = dx.to(images.dtype).view(1, 1, 1, -1)
    dy = dy.to(images.dtype).view(1, 1, -1, 1)
    top = images[:, :, y_lo, :]
    bottom = images[:, :, y_hi, :]
    top = top[:, :, :, x_lo] + (top[:, :, :, x_hi] - top[:, :, :, x_lo]) * dx
    bottom = bottom[:, :, :, x_lo] + (bottom[:, :, :, x_hi] - bottom[:, :, :, x_lo]) * dx
    return top + (bottom - top) * dy
