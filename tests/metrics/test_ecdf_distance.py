"""ecdf_distance against scipy (ks_2samp, wasserstein_distance) and a direct numeric integration."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import torch

from medsyn.metrics.ecdf import ecdf_distance, ecdf_distance_torch


def backends() -> list[str]:
    try:
        import medsyn._kernels as kernels

        return ["torch", "cpp"] if hasattr(kernels, "ecdf_distance") else ["torch"]
    except ImportError:
        return ["torch"]


def integrate_ecdf_gap(a: np.ndarray, b: np.ndarray, steps: int = 400_000) -> float:
    """Midpoint rule on a fine grid: independent of any merge logic."""
    lo, hi = min(a.min(), b.min()), max(a.max(), b.max())
    x = np.linspace(lo, hi, steps + 1)
    mid = (x[:-1] + x[1:]) / 2
    fa = np.searchsorted(np.sort(a), mid, side="right") / a.size
    fb = np.searchsorted(np.sort(b), mid, side="right") / b.size
    return float(np.abs(fa - fb).sum() * (hi - lo) / steps)


CASES = {
    "continuous": lambda rng: (rng.normal(size=300), rng.normal(0.3, 1.5, size=170)),
    "ties": lambda rng: (
        rng.integers(0, 6, size=200).astype(float),
        rng.integers(1, 8, size=90).astype(float),
    ),
    "tiny": lambda rng: (np.array([1.0]), np.array([2.0, 0.0])),
    "identical": lambda rng: (np.arange(10.0), np.arange(10.0)[::-1].copy()),
    "disjoint": lambda rng: (np.zeros(3), np.ones(4) * 5),
}


@pytest.mark.parametrize("backend", backends())
@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_scipy_and_integration(backend, case):
    a, b = CASES[case](np.random.default_rng(0))
    ks, area = ecdf_distance(a, b, backend=backend)
    assert ks == pytest.approx(scipy.stats.ks_2samp(a, b).statistic, abs=1e-15)
    assert area == pytest.approx(scipy.stats.wasserstein_distance(a, b), rel=1e-12, abs=1e-15)
    assert area == pytest.approx(integrate_ecdf_gap(a, b), rel=1e-4, abs=1e-9)


def test_known_values_and_symmetry():
    ks, area = ecdf_distance(np.zeros(3), np.ones(4) * 5)
    assert (ks, area) == (1.0, 5.0)
    a, b = np.random.default_rng(1).normal(size=(2, 50))
    assert ecdf_distance(a, b) == ecdf_distance(b, a)


def test_torch_twin_equals_public_default():
    rng = np.random.default_rng(2)
    a, b = rng.integers(0, 20, size=500).astype(float), rng.normal(10, 4, size=333)
    assert ecdf_distance(a, b) == pytest.approx(
        ecdf_distance_torch(torch.from_numpy(a), torch.from_numpy(b)), abs=1e-13
    )


def test_accepts_torch_float32_and_int_inputs():
    a = torch.tensor([3, 1, 2], dtype=torch.int64)
    b = torch.tensor([1.5, 2.5], dtype=torch.float32)
    assert ecdf_distance(a, b)[0] == pytest.approx(scipy.stats.ks_2samp([3, 1, 2], [1.5, 2.5]).statistic)


@pytest.mark.parametrize(
    "a, b, match",
    [
        (np.zeros(0), np.zeros(3), "a is empty"),
        (np.zeros(3), np.zeros((3, 1)), "b must be a 1-d"),
        (np.array([0.0, np.nan]), np.zeros(3), "a contains"),
        (np.zeros(3), np.array([np.inf]), "b contains"),
        ([0.0, 1.0], np.zeros(3), "a must be a torch.Tensor"),
    ],
)
def test_bad_input(a, b, match):
    with pytest.raises(ValueError, match=match):
        ecdf_distance(a, b)
