"""Mean and 90% confidence interval of a metric over seeds (issue 5 item 5).

    mean_ci90([0.81, 0.84, 0.79])   # {"mean": 0.8133, "ci90": [0.7711, 0.8556], "n_seeds": 3}
    aggregate_seeds([run_seed0, run_seed1, run_seed2])   # same nesting, every number -> mean_ci90

The interval is Student's t: mean +- t_{0.95, n-1} * s / sqrt(n), with s the sample standard deviation
(ddof=1): a two-sided 90% interval for the mean of a normal population with unknown variance, the right one
for the 3-10 seeds such experiments afford.

One seed (n=1): no spread can be estimated, so there is no interval; medsyn reports the degenerate
interval [mean, mean] (JSON-friendly, plots as a point) and "n_seeds": 1, which is what readers must check
before trusting a zero-width interval.

Bounded metrics (issue 14 item 6): a t interval ignores the range, and gave accuracy 0.9958 [0.9837, 1.008].
With ``value_range=(low, high)`` (either end may be infinite) the interval is the bootstrap percentile
interval of the mean over seeds: the 5% and 95% quantiles (linear interpolation) of the means of resamples
of the seeds with replacement. Every resampled mean lies in [min(values), max(values)], so the interval
stays inside the range by construction and nothing is clipped; values outside the range raise. With at most
``EXACT_BOOTSTRAP_MAX_SEEDS`` seeds every one of the n^n ordered resamples is enumerated (exact, no
randomness); above, ``BOOTSTRAP_RESAMPLES`` resamples drawn with a fixed seed. Such a leaf carries
``"ci_method": "bootstrap_percentile"``; a leaf without ``ci_method`` is the Student-t interval.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from scipy.special import stdtrit

__all__ = [
    "BOOTSTRAP_RESAMPLES",
    "BOOTSTRAP_SEED",
    "CONFIDENCE",
    "EXACT_BOOTSTRAP_MAX_SEEDS",
    "aggregate_seeds",
    "bootstrap_percentile_interval",
    "mean_ci90",
]

CONFIDENCE = 0.90
EXACT_BOOTSTRAP_MAX_SEEDS = 6  # 6^6 = 46656 ordered resamples
BOOTSTRAP_RESAMPLES = 20000
BOOTSTRAP_SEED = 0


def bootstrap_percentile_interval(values: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """values: 1-d finite float64, n >= 1 -> (low, high), the percentile interval of the bootstrap mean;
    always inside [values.min(), values.max()]."""
    count = int(values.size)
    if count <= EXACT_BOOTSTRAP_MAX_SEEDS:
        indices = np.array(list(itertools.product(range(count), repeat=count)), dtype=np.int64)
    else:
        rng = np.random.default_rng(BOOTSTRAP_SEED)
        indices = rng.integers(0, count, size=(BOOTSTRAP_RESAMPLES, count))
    means = values[indices].mean(axis=1)
    tail = (1.0 - confidence) / 2
    low, high = np.quantile(means, [tail, 1.0 - tail])
    # the mean of equal numbers can differ from them in the last bit: keep the interval inside the data
    return max(float(low), float(values.min())), min(float(high), float(values.max()))


def _checked_range(value_range: Any) -> tuple[float, float]:
    try:
        low, high = (float(end) for end in value_range)
    except (TypeError, ValueError) as error:
        raise ValueError(f"value_range must be (low, high) numbers, got {value_range!r}: {error}") from error
    if math.isnan(low) or math.isnan(high) or not low < high:
        raise ValueError(f"value_range must be (low, high) with low < high, got {value_range!r}")
    return low, high


def mean_ci90(values: Sequence[float] | np.ndarray,
              value_range: tuple[float, float] | None = None) -> dict[str, Any]:
    """values: 1-d finite numbers (one per seed) -> {"mean": float, "ci90": [low, high], "n_seeds": int}.

    value_range: the metric's (low, high), ends may be +-inf; given, the interval is the bootstrap
    percentile interval (inside the range) and the result carries ``"ci_method": "bootstrap_percentile"``.
    """
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
    if value_range is not None:
        low, high = _checked_range(value_range)
        outside = array[(array < low) | (array > high)]
        if outside.size:
            raise ValueError(f"values {outside.tolist()} lie outside the metric's range [{low}, {high}]")
        if array.min() == array.max():  # no spread; also keeps the mean of equal numbers bit-exact
            mean = ci_low = ci_high = float(array[0])
        else:
            mean = min(max(mean, float(array.min())), float(array.max()))
            ci_low, ci_high = bootstrap_percentile_interval(array)
        return {"mean": mean, "ci90": [ci_low, ci_high], "n_seeds": count, "ci_method": "bootstrap_percentile"}
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


def aggregate_seeds(runs: Sequence[Mapping[str, Any]], *, _path: str = "",
                    value_range_of: Callable[[str], tuple[float, float] | None] | None = None) -> dict[str, Any]:
    """Per-seed result trees with the same keys -> one tree whose numeric leaves are ``mean_ci90`` over seeds.

    value_range_of: key path (``"utility.baseline_real.0x.accuracy"``) -> the metric's range or None
    (unbounded: Student-t); None for every leaf when not given.

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
            aggregated[key] = aggregate_seeds(leaves, _path=path, value_range_of=value_range_of)
        elif all(_is_number(leaf) for leaf in leaves):
            try:
                value_range = None if value_range_of is None else value_range_of(path)
                aggregated[key] = mean_ci90([float(leaf) for leaf in leaves], value_range)
            except ValueError as error:
                raise ValueError(f"{path}: {error}") from error
        elif all(leaf == leaves[0] for leaf in leaves):
            aggregated[key] = leaves[0]
        else:
            raise ValueError(f"{path}: values differ between runs and are not all numbers: {leaves!r:.200}")
    return aggregated
