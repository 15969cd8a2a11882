"""A DP setting with a list of sigmas is a grid of training runs, one per sigma (paper 001 §3.1, §4.2).

    dp_runs({"noise_multiplier": [0.0, 0.5], "max_grad_norm": 1.0})
        -> [{"noise_multiplier": 0.0, "max_grad_norm": 1.0}, {"noise_multiplier": 0.5, "max_grad_norm": 1.0}]
    sigma_name(0.5) -> "sigma_0.5"     (the run folder of train_generator and the set name of the DP sweep)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from medsyn.training.settings import DPSettings, config_from_mapping

__all__ = ["PAPER_SIGMAS", "PAPER_UTILITY_PER_CLASS", "dp_runs", "sigma_name"]

# The DP sweep's noise multipliers, paper 001 §4.2 (Fig. 2, Table 1): 0 = plain SGD (§3.1); 0.15 is the best
# trade-off of §4.2.3, 0.03 the smallest noise shown.
PAPER_SIGMAS: tuple[float, ...] = (0.0, 0.03, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4)
# Synthetic images per class the sweep's utility classifier trains on (001 §3.4 and the authors' code: 100).
PAPER_UTILITY_PER_CLASS = 100


def sigma_name(sigma: float) -> str:
    """The name of one sigma's run or synthetic set, e.g. ``sigma_0.5``."""
    return f"sigma_{sigma:g}"


def dp_runs(dp: Mapping[str, Any] | None) -> list[dict[str, Any] | None]:
    """One DP mapping per model to train: [None] without DP, one per sigma for a list of sigmas; every
    sigma is validated (DPSettings) before any training starts. ValueError names ``dp.<key>``."""
    if dp is None:
        return [None]
    if not isinstance(dp, Mapping):
        raise ValueError(f"dp must be a mapping (noise_multiplier, max_grad_norm, delta) or null, got {dp!r}")
    sigmas = dp.get("noise_multiplier")
    if isinstance(sigmas, (list, tuple)):
        if not sigmas:
            raise ValueError("dp.noise_multiplier is an empty list; give one sigma or a list of sigmas")
        if len(set(sigmas)) != len(sigmas):
            raise ValueError(f"dp.noise_multiplier lists a sigma twice: {list(sigmas)}")
        runs: list[dict[str, Any] | None] = [{**dp, "noise_multiplier": sigma} for sigma in sigmas]
    else:
        runs = [dict(dp)]
    for run in runs:
        config_from_mapping(DPSettings, run, what="dp")
    return runs
