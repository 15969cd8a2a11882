"""Standardise feature matrices with the statistics of one reference set only (issue 14 item 6).

    scale = FeatureScale.of(real_train_features)      # per-feature mean and std of the real training split
    real_z, synthetic_z = scale.apply(real_train_features), scale.apply(synthetic_features)

FID and KID depend on the scale of the features: the cubic KID kernel on unscaled penultimate features gave
-1794, a number that means nothing across runs. Standardising every set with the *real training* features'
mean and std (population std, ddof=0) puts each feature on a stated scale (the real training features have
mean 0 and std 1 per feature) without ever using test or synthetic statistics. A feature that is constant on
the real training split (std 0) is only centred (divided by 1): it carries no scale to learn.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from medsyn.metrics.fid import float64_features

__all__ = ["FEATURE_SCALE_DESCRIPTION", "FeatureScale"]

FEATURE_SCALE_DESCRIPTION = ("standardised per feature with the mean and std (ddof=0) of the real training "
                             "split's features only")


@dataclass(frozen=True)
class FeatureScale:
    """mean, std: float64 [D] of the reference (real training) features; std 0 replaced by 1."""

    mean: torch.Tensor
    std: torch.Tensor

    @classmethod
    def of(cls, reference_features: Any, name: str = "reference_features") -> FeatureScale:
        """reference_features [N, D] (N >= 2, finite; torch or numpy) -> its per-feature mean and std."""
        reference = float64_features(reference_features, name)
        std = reference.std(dim=0, unbiased=False)
        return cls(mean=reference.mean(dim=0), std=torch.where(std > 0, std, torch.ones_like(std)))

    def apply(self, features: Any, name: str = "features") -> torch.Tensor:
        """features [M, D] -> float64 [M, D], (features - mean) / std with the reference's statistics."""
        values = float64_features(features, name)
        if values.shape[1] != self.mean.shape[0]:
            raise ValueError(f"{name} has {values.shape[1]} features per row but the reference had "
                             f"{self.mean.shape[0]}")
        return (values - self.mean.to(values.device)) / self.std.to(values.device)
