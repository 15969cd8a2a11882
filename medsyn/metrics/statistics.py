"""Mean and 90% confidence interval of a metric over seeds (issue 5 item 5).

    mean_ci90([0.81, 0.84, 0.79])   # {"mean": 0.8133, "ci90": [0.7711, 0.8556], "n_seeds": 3}
    aggregate_seeds([run_seed0, run_seed1, run_seed2])   # same nesting, every number -> mean_ci90

The interval is Student's t: mean +- t_{0.95, n-1} * s / sqrt(n), with s the sample standard deviation
(ddof=1): a two-sided 90% interval for the mean of a normal population with unknown variance, the right one
for the 3-10 seeds such experiments afford.

One seed (n=1): no spread can be estimated, so there is no interval; medsyn reports the degenerate
interval [mean, mean] (JSON-friendly, plots as a point) and "n_seeds": 1, which is what readers must check
before trusting a zero-width interval.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy.special import stdtrit

__all__ = ["CONFIDENCE", "aggregate_seeds", "mean_ci90"]

CONFIDENCE = 0.90


def mean_ci90(values: Sequence[float] | np.ndarray) -> dict[str, Any]:
    """values: 1-d finite numbers (one per seed) -> {"mean": float, "ci90": [low, high], "n_seeds": int}."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"values must be a 1-d sequence of numbers, got {values!r:.80}: {error}") from error
    if array.ndim != 1:
        raise ValueError(f"values must be 1-d (one number per seed), got shape {array.shape}")
    if array.size == 0:
        raise ValueError("values is empty: a mean over seeds needs at least one seed")
    if not np.isfinite(array).all():
        raise ValueError(f"values contain NaN or inf: {array.tolist()}")
    count = int(array.size)
    mean = float(array.mean())
    if count == 1:
        return {"mean": mean, "ci90": [mean, mean], "n_seeds": 1}
    # t quantile for a two-sided interval: P(|T| <= t) = 0.90  <=>  t = F^-1(0.95) with n-1 degrees of freedom
    quantile = float(stdtrit(count - 1, 0.5 + CONFIDENCE / 2))
    half_width = quantile * float(array.std(ddof=1)) / math.sqrt(count)
    return {"mean": mean, "ci90": [mean - half_width, mean + half_width], "n_seeds": count}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


def aggregate_seeds(runs: Sequence[Mapping[str, Any]], *, _path: str = "") -> dict[str, Any]:
    """Per-seed result trees with the same keys -> one tree whose numeric leaves are ``mean_ci90`` over seeds.

    runs: one nested mapping per seed (e.g. regime -> multiplier -> {"accuracy": 0.8, ...}). A leaf that is
    not a number (a name, a flag) must be equal in every run and is kept as it is. Different keys or a
    non-finite number raise ValueError naming the key path.
    """
    if not isinstance(runs, Sequence) or len(runs) == 0:
        raise ValueError("runs must be a non-empty list of per-seed result mappings")
    where = _path or "<top level>"
    if not all(isinstance(run, Mapping) for run in runs):
        raise ValueError(f"runs[*] at {where} must all be mappings, got {[type(r).__name__ for r in runs]}")
    keys = list(runs[0].keys())
    for index, run in enumerate(runs[1:], start=1):
        if set(run.keys()) != set(keys):
            raise ValueError(
                f"runs[{index}] has keys {sorted(run)} at {where} but runs[0] has {sorted(keys)}"
            )
    aggregated: dict[str, Any] = {}
    for key in keys:
        path = f"{_path}.{key}" if _path else str(key)
        leaves = [run[key] for run in runs]
        if all(isinstance(leaf, Mapping) for leaf in leaves):
            aggregated[key] = aggregate_seeds(leaves, _path=path)
        elif all(_is_number(leaf) for leaf in leaves):
            try:
                aggregated[key] = mean_ci90([float(leaf) for leaf in leaves])
            except ValueError as error:
                raise ValueError(f"{path}: {error}") from error
        elif all(leaf == leaves[0] for leaf in leaves):
            aggregated[key] = leaves[0]
        else:
            raise ValueError(f"{path}: values differ between runs and are not all numbers: {leaves!r:.200}")
    return aggregated
