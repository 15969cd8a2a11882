"""kid against an explicit double-loop numpy MMD^2 and its statistical behaviour."""

from __future__ import annotations

import numpy as np
import pytest

from medsyn.metrics.kid import kid, mmd2_unbiased


def oracle_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    d = x.shape[1]
    k = lambda a, b: (a @ b / d + 1.0) ** 3
    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


def test_one_full_subset_equals_the_explicit_formula():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(20, 6)), rng.normal(0.5, 1.2, size=(20, 6))
    mean, std = kid(x, y, subsets=1, subset_size=20)
    assert mean == pytest.approx(oracle_mmd2(x, y), rel=1e-12)
    assert std == 0.0


def test_unequal_sizes_and_cap():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(15, 4)), rng.normal(size=(9, 4))
    import torch

    assert mmd2_unbiased(torch.from_numpy(x), torch.from_numpy(y)) == pytest.approx(
        oracle_mmd2(x, y), rel=1e-12
    )
    mean, _ = kid(x, y, subsets=3, subset_size=1000)  # capped at 9 rows
    assert np.isfinite(mean)


def test_same_distribution_near_zero_shifted_positive():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(400, 16)), rng.normal(size=(400, 16))
    same, _ = kid(a, b, subsets=20, subset_size=200)
    shifted, _ = kid(a, b + 1.0, subsets=20, subset_size=200)
    assert abs(same) < 0.02 and shifted > 0.5
    assert kid(a, b, subsets=5, subset_size=100, seed=3) == kid(a, b, subsets=5, subset_size=100, seed=3)


@pytest.mark.parametrize(
    "kwargs, match",
    [({"subsets": 0}, "subsets"), ({"subset_size": 1}, "subset_size")],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        kid(np.zeros((5, 2)), np.ones((5, 2)), **kwargs)


def test_bad_features():
    with pytest.raises(ValueError, match="synthetic_features needs at least 2"):
        kid(np.zeros((5, 2)), np.zeros((1, 2)))
    with pytest.raises(ValueError, match="feature dimension"):
        kid(np.zeros((5, 2)), np.zeros((5, 3)))
