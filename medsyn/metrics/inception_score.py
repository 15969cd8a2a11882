"""Inception Score (Salimans et al. 2016) from any classifier's class probabilities.

IS = exp( E_x KL( p(y|x) || p(y) ) ), computed per split of the samples and reported as the mean and
standard deviation over splits (the torch-fidelity / original-code convention, 10 splits). With an
ImageNet Inception it is the published IS; with a domain classifier (e.g. the Baseline Real classifier of
the assessment) it is named after that classifier and is only comparable within it.
"""

from __future__ import annotations

from typing import Any

import torch

from medsyn.metrics.validation import as_feature_matrix

__all__ = ["inception_score", "IS_SPLITS"]

IS_SPLITS = 10  # Salimans et al. 2016 / torch-fidelity default
_PROBABILITY_TOLERANCE = 1e-4


def inception_score(probabilities: Any, splits: int = IS_SPLITS) -> tuple[float, float]:
    """probabilities: float [N, K], rows are class distributions (>= 0, summing to 1) -> (mean, std) over splits.

    Splits are consecutive blocks of sizes differing by at most one; N must be >= splits. Computed in
    float64; 0 * log 0 counts as 0. Range: 1 (every sample has the same prediction) to K.
    """
    if isinstance(splits, bool) or not isinstance(splits, int) or splits < 1:
        raise ValueError(f"splits must be a positive integer, got {splits!r}")
    probs = as_feature_matrix(probabilities, "probabilities", min_rows=splits).to(torch.float64)
    if probs.min() < 0:
        raise ValueError(f"probabilities must be >= 0, got a minimum of {float(probs.min()):.4g}")
    row_sums = probs.sum(dim=1)
    if (row_sums - 1).abs().max() > _PROBABILITY_TOLERANCE:
        raise ValueError(
            "probabilities rows must sum to 1 (apply softmax to logits first), got sums in "
            f"[{float(row_sums.min()):.6g}, {float(row_sums.max()):.6g}]"
        )
    probs = probs / row_sums[:, None]
    scores = []
    for block in torch.tensor_split(probs, splits):
        marginal = block.mean(dim=0, keepdim=True)
        log_ratio = torch.where(block > 0, block.log() - marginal.log(), torch.zeros_like(block))
        scores.append(torch.exp((block * log_ratio).sum(dim=1).mean()))
    stacked = torch.stack(scores)
    std = float(stacked.std(unbiased=False)) if splits > 1 else 0.0
    return float(stacked.mean()), std
