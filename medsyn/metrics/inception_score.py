"""Inception Score (Salimans et al. 2016) from any classifier's class probabilities.

IS = exp( E_x KL( p(y|x) || p(y) ) ), computed per split of the samples and reported as the mean and
standard deviation over splits (the torch-fidelity / original-code convention, 10 splits). With an
ImageNet Inception it is the published IS; with a domain classifier (e.g. the Baseline Real classifier of
the assessment) it is named after that classifier and is only comparable within it.

Splits as torch-fidelity (``metric_isc.py``, v0.4.0) and Salimans et al.'s code: split i holds rows
[i N // splits, (i + 1) N // splits), so when N is not divisible the larger splits come last (37 rows in
4 splits: 9, 9, 9, 10), and the std is the population std (``np.std``). torch-fidelity also permutes the
samples before splitting by default (``samples_shuffle=True``, ``np.random.RandomState(2020)``):
``shuffle_seed=2020`` does the same; the default ``None`` keeps the given order.

Low-precision probabilities: rows must sum to 1 within max(1e-4, (2 + log2 K) eps + K tiny), eps and tiny
the machine epsilon and smallest subnormal of the input dtype: each entry of a float16 softmax is rounded
(relative eps / 2 when normal, absolute tiny / 2 when subnormal) and a normaliser summed in that dtype adds up
to log2(K) eps (pairwise summation). float16 over K = 1000 classes: 0.0117 (measured errors stay below 7e-4);
float32 and float64: 1e-4. Accepted rows are renormalised in float64.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from medsyn.metrics.validation import as_feature_matrix, float_resolution

__all__ = ["IS_SPLITS", "inception_score", "split_bounds"]

IS_SPLITS = 10  # Salimans et al. 2016 / torch-fidelity default
_PROBABILITY_TOLERANCE = 1e-4


def probability_sum_tolerance(classes: int, probabilities: Any) -> float:
    """How far from 1 a row of ``probabilities`` (in the dtype it arrived in) may sum (module docstring)."""
    eps = float_resolution(probabilities)
    dtype = getattr(probabilities, "dtype", None)
    if isinstance(dtype, torch.dtype) and dtype.is_floating_point:
        tiny = float(torch.finfo(dtype).smallest_normal) * eps
    elif isinstance(dtype, np.dtype) and np.issubdtype(dtype, np.floating):
        tiny = float(np.finfo(dtype).smallest_subnormal)
    else:
        tiny = 0.0
    return max(_PROBABILITY_TOLERANCE, (2 + math.log2(classes)) * eps + classes * tiny)


def split_bounds(count: int, splits: int) -> list[tuple[int, int]]:
    """[start, stop) of each split: i * count // splits (torch-fidelity, Salimans et al.)."""
    return [(i * count // splits, (i + 1) * count // splits) for i in range(splits)]


def inception_score(
    probabilities: Any, splits: int = IS_SPLITS, *, shuffle_seed: int | None = None
) -> tuple[float, float]:
    """probabilities: float [N, K], rows are class distributions (>= 0, summing to 1) -> (mean, std) over splits.

    Splits: rows [i N // splits, (i + 1) N // splits) (torch-fidelity); N must be >= splits. shuffle_seed:
    None keeps the row order; an integer permutes the rows first with ``np.random.RandomState(seed)`` as
    torch-fidelity does (its default seed is 2020). Computed in float64; 0 * log 0 counts as 0.
    Range: 1 (every sample has the same prediction) to K.
    """
    if isinstance(splits, bool) or not isinstance(splits, int) or splits < 1:
        raise ValueError(f"splits must be a positive integer, got {splits!r}")
    if shuffle_seed is not None and (isinstance(shuffle_seed, bool) or not isinstance(shuffle_seed, int)):
        raise ValueError(f"shuffle_seed must be None or an integer, got {shuffle_seed!r}")
    probs = as_feature_matrix(probabilities, "probabilities", min_rows=splits, dtype=torch.float64)
    if probs.min() < 0:
        raise ValueError(f"probabilities must be >= 0, got a minimum of {float(probs.min()):.4g}")
    tolerance = probability_sum_tolerance(probs.shape[1], probabilities)
    row_sums = probs.sum(dim=1)
    if (row_sums - 1).abs().max() > tolerance:
        raise ValueError(
            f"probabilities rows must sum to 1 within {tolerance:.3g} (apply softmax to logits first), got sums in "
            f"[{float(row_sums.min()):.6g}, {float(row_sums.max()):.6g}]"
        )
    probs = probs / row_sums[:, None]
    if shuffle_seed is not None:
        order = np.random.RandomState(shuffle_seed).permutation(probs.shape[0])
        probs = probs[torch.from_numpy(order).to(probs.device)]
    scores = []
    for start, stop in split_bounds(probs.shape[0], splits):
        block = probs[start:stop]
        marginal = block.mean(dim=0, keepdim=True)
        log_ratio = torch.where(block > 0, block.log() - marginal.log(), torch.zeros_like(block))
        scores.append(torch.exp((block * log_ratio).sum(dim=1).mean()))
    stacked = torch.stack(scores)
    std = float(stacked.std(unbiased=False)) if splits > 1 else 0.0
    return float(stacked.mean()), std
