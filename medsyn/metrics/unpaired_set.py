"""Paper 001's set-level PSNR, SSIM and LPIPS (§3.3, Fig. 2, Table 1): a held-out real set X_h and a synthetic
set X_s matched in size, scored pair by pair although no synthetic image is a version of any real one.

    real_index, synthetic_index = unpaired_set_pairs(real_labels, synthetic_labels)
    score_unpaired_set(real, real_labels, synthetic, synthetic_labels, lpips=None)   # {"psnr", "ssim"(, "lpips")}

Pairing (the paper matches the sizes and says no more; this is medsyn's reading): within each class c, the
first n_c real and the first n_c synthetic images of that class in their sets' order, n_c = the smaller of
the two counts, so the pairs share a class and nothing else. The numbers are therefore a similarity of two
sets at the pixel level (PSNR, SSIM) or in VGG16 features (LPIPS) between unrelated images of one class, not a
reconstruction error: smooth, average-looking images score a higher PSNR than sharp, varied ones (paper 001
notes that VAE outputs do), and a generator that copied X_h would score like a perfect reconstruction. For
the error of reconstructing a given image see ``medsyn.metrics.true_pairs``.
"""

from __future__ import annotations

from typing import Any

import torch

from medsyn.metrics.true_pairs import PAIR_BATCH, mean_pair_scores

__all__ = ["score_unpaired_set", "unpaired_set_pairs"]


def unpaired_set_pairs(real_labels: torch.Tensor, synthetic_labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """real_labels [N_r], synthetic_labels [N_s] int64 -> (real_index, synthetic_index), int64 [P] each:
    pair p = (real[real_index[p]], synthetic[synthetic_index[p]]), class by class (ascending), the first
    min(count_r(c), count_s(c)) images of each class c in order. ValueError when no class has both."""
    for name, labels in (("real_labels", real_labels), ("synthetic_labels", synthetic_labels)):
        if not isinstance(labels, torch.Tensor) or labels.ndim != 1 or labels.dtype != torch.int64:
            raise ValueError(f"{name} must be an int64 tensor [N], got "
                             f"{tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__}")
    classes = int(torch.cat([real_labels, synthetic_labels, torch.tensor([-1])]).max()) + 1
    real_parts, synthetic_parts = [], []
    for c in range(classes):
        real_of_c = torch.nonzero(real_labels == c).flatten()
        synthetic_of_c = torch.nonzero(synthetic_labels == c).flatten()
        n = min(len(real_of_c), len(synthetic_of_c))
        real_parts.append(real_of_c[:n])
        synthetic_parts.append(synthetic_of_c[:n])
    real_index = torch.cat(real_parts) if real_parts else torch.zeros(0, dtype=torch.int64)
    if len(real_index) == 0:
        raise ValueError("the unpaired set needs a class with both real and synthetic images; the real labels "
                         f"have classes {sorted(set(real_labels.tolist()))}, the synthetic "
                         f"{sorted(set(synthetic_labels.tolist()))}")
    return real_index, torch.cat(synthetic_parts)


def score_unpaired_set(real: Any, real_labels: torch.Tensor, synthetic: Any, synthetic_labels: torch.Tensor, *,
                       lpips: Any = None, batch_size: int = PAIR_BATCH) -> dict[str, float]:
    """real, synthetic: float [N,C,H,W] in [0, 1] (tensors or StoredImages, read ``batch_size`` pairs at a time)
    with their labels -> {"psnr": mean dB, "ssim": mean, "lpips": mean when a network is given} over the
    :func:`unpaired_set_pairs` pairs."""
    if len(real) != len(real_labels) or len(synthetic) != len(synthetic_labels):
        raise ValueError(f"{len(real)} real images with {len(real_labels)} labels, {len(synthetic)} synthetic "
                         f"images with {len(synthetic_labels)} labels: each needs one label per image")
    real_index, synthetic_index = unpaired_set_pairs(real_labels, synthetic_labels)
    pairs = ((real[real_index[start:start + batch_size]], synthetic[synthetic_index[start:start + batch_size]])
             for start in range(0, len(real_index), batch_size))
    return mean_pair_scores(pairs, lpips=lpips)
