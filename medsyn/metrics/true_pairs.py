"""PSNR, SSIM and LPIPS of image pairs, and the true-pair protocol: each real image against the generator's
reconstruction of that same image (``reconstruct(images, labels)``, e.g. the CVAE's posterior mean decoded),
so the pairing is known, not a nearest-neighbour match and not two unrelated images.

    mean_pair_scores(pairs, lpips=None)                          # {"psnr", "ssim"(, "lpips")}: means over pairs
    score_true_pairs(real, labels, reconstruct, lpips=None)      # the same over (real[i], reconstruct(real)[i])
    true_pair_psnr_ssim(real, reconstructions)                   # {"psnr", "ssim"} of two tensors

Per pair (x, y), images in [0, 1]:

- PSNR = 10 log10(1 / MSE(x, y)) dB (scikit-image ``peak_signal_noise_ratio``, data_range 1); the MSE is floored at
  MSE_FLOOR so that an identical pair scores PSNR_MAX_DB instead of +inf and the mean stays a number;
- SSIM: scikit-image ``structural_similarity`` (uniform 7x7 window, data_range 1, mean over channels);
- LPIPS: :mod:`medsyn.metrics.lpips` (VGG16, lpips v0.1), when a network is given.

On true pairs they measure how faithfully the generator reproduces a given image (a reconstruction error),
not how realistic its samples are; the unpaired set-level version of paper 001 is ``medsyn.metrics.unpaired_set``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch

__all__ = [
    "MSE_FLOOR",
    "PAIR_BATCH",
    "PSNR_MAX_DB",
    "mean_pair_scores",
    "pair_psnr",
    "pair_ssim",
    "score_true_pairs",
    "true_pair_psnr_ssim",
]

MSE_FLOOR = 1e-10
PSNR_MAX_DB = 10 * math.log10(1 / MSE_FLOOR)  # 100 dB
PAIR_BATCH = 64  # pairs read (and reconstructed) together; memory, not results, depends on it


def _check_pair_batch(first: torch.Tensor, second: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(first, torch.Tensor) or not isinstance(second, torch.Tensor):
        raise ValueError(f"pairs must be two tensors [N,C,H,W], got {type(first).__name__} and {type(second).__name__}")
    if first.shape != second.shape or first.ndim != 4 or first.shape[0] == 0:
        raise ValueError(
            f"the two images of each pair must come as non-empty [N,C,H,W] of the same shape, got "
            f"{tuple(first.shape)} and {tuple(second.shape)}"
        )
    return first.detach().float().cpu().numpy(), second.detach().float().clamp(0, 1).cpu().numpy()


def pair_psnr(first: torch.Tensor, second: torch.Tensor) -> np.ndarray:
    """first, second: float [N,C,H,W] in [0, 1] -> PSNR in dB [N] of each pair (MSE floored at MSE_FLOOR)."""
    from skimage.metrics import mean_squared_error

    a, b = _check_pair_batch(first, second)
    return np.array([10 * math.log10(1.0 / max(mean_squared_error(x, y), MSE_FLOOR)) for x, y in zip(a, b)])


def pair_ssim(first: torch.Tensor, second: torch.Tensor) -> np.ndarray:
    """first, second: float [N,C,H,W] in [0, 1], H, W >= 7 -> SSIM [N] of each pair (mean over channels)."""
    from skimage.metrics import structural_similarity

    a, b = _check_pair_batch(first, second)
    return np.array([structural_similarity(x, y, data_range=1.0, channel_axis=0) for x, y in zip(a, b)])


def mean_pair_scores(pairs: Iterable[tuple[torch.Tensor, torch.Tensor]], *, lpips: Any = None) -> dict[str, float]:
    """pairs: batches (first [n,C,H,W], second [n,C,H,W]) in [0, 1]; lpips: an ``LPIPSVGG16`` or None ->
    {"psnr": mean dB, "ssim": mean, and "lpips": mean when a network is given} over every pair."""
    from medsyn.metrics.lpips import lpips_distances

    sums = {"psnr": 0.0, "ssim": 0.0, **({"lpips": 0.0} if lpips is not None else {})}
    count = 0
    for first, second in pairs:
        sums["psnr"] += float(pair_psnr(first, second).sum())
        sums["ssim"] += float(pair_ssim(first, second).sum())
        if lpips is not None:
            sums["lpips"] += float(lpips_distances(lpips, first, second.clamp(0, 1)).double().sum())
        count += len(first)
    if count == 0:
        raise ValueError("no image pairs to score")
    return {key: total / count for key, total in sums.items()}


def score_true_pairs(real: Any, labels: torch.Tensor,
                     reconstruct: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], *, lpips: Any = None,
                     batch_size: int = PAIR_BATCH) -> dict[str, float]:
    """real: float [N,C,H,W] in [0, 1] (a tensor or StoredImages, read ``batch_size`` at a time), labels:
    int64 [N]; reconstruct(images, labels) -> the reconstructions [n,C,H,W] of that batch, in order ->
    :func:`mean_pair_scores` of the pairs (real[i], reconstruction of real[i])."""
    from medsyn.data.stored_images import image_batches

    if len(real) != len(labels):
        raise ValueError(f"{len(real)} real images but {len(labels)} labels")

    def pairs():
        start = 0
        for batch in image_batches(real, batch_size):
            batch_labels = labels[start:start + len(batch)]
            reconstructions = reconstruct(batch, batch_labels)
            if not isinstance(reconstructions, torch.Tensor) or reconstructions.shape != batch.shape:
                shape = tuple(reconstructions.shape) if isinstance(reconstructions, torch.Tensor) else type(reconstructions).__name__
                raise ValueError(f"reconstruct returned {shape} for a batch of {tuple(batch.shape)} images; "
                                 "expected one reconstruction per image, of the same shape")
            yield batch, reconstructions
            start += len(batch)

    return mean_pair_scores(pairs(), lpips=lpips)


def true_pair_psnr_ssim(real: torch.Tensor, reconstructions: torch.Tensor) -> dict[str, float]:
    """real, reconstructions: float [N,C,H,W] in [0, 1], pair i = (real[i], reconstructions[i]) ->
    {"psnr": mean dB, "ssim": mean SSIM}."""
    return mean_pair_scores([(real, reconstructions)])
