"""prdc against a brute-force float64 numpy oracle (full matrices), plus conventions and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medsyn.metrics import prdc
from medsyn.metrics.neighbors import knn_backend


def available_backends() -> list[str]:
    names = ["torch"]
    try:
        knn_backend("cpp", torch.device("cpu"))
        names.append("cpp")
    except RuntimeError:  # BackendUnavailableError: extension not built
        pass
    return names


BACKENDS = available_backends()


def sq_dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.astype(np.float64), b.astype(np.float64)
    return ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)


def oracle_prdc(real: np.ndarray, fake: np.ndarray, k: int) -> dict[str, float]:
    """Full-matrix float64 reference; decisions on squared distances, radius excludes self by index."""
    rr, ff, rf = sq_dist(real, real), sq_dist(fake, fake), sq_dist(real, fake)
    np.fill_diagonal(rr, np.inf)
    np.fill_diagonal(ff, np.inf)
    rad_r = np.sort(rr, axis=1)[:, k - 1]
    rad_f = np.sort(ff, axis=1)[:, k - 1]
    inside_real = rf <= rad_r[:, None]  # [n, m]
    return {
        "precision": inside_real.any(0).mean(),
        "recall": (rf <= rad_f[None, :]).any(1).mean(),
        "density": inside_real.sum() / (k * fake.shape[0]),
        "coverage": (rf.min(1) <= rad_r).mean(),
    }


def assert_same(result: dict[str, float], expected: dict[str, float]) -> None:
    assert set(result) == {"precision", "recall", "density", "coverage"}
    for key, value in expected.items():
        assert result[key] == pytest.approx(float(value), abs=1e-12), key


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "n, m, d, k", [(40, 50, 8, 3), (97, 61, 33, 5), (5, 4, 3, 1), (2, 2, 1, 1), (30, 30, 200, 3)]
)
def test_random_sets_match_oracle(backend, n, m, d, k):
    rng = np.random.default_rng(n * 1000 + d)
    real = rng.normal(size=(n, d)).astype(np.float32)
    fake = (rng.normal(size=(m, d)) * 1.2 + 0.1).astype(np.float32)
    assert_same(prdc(real, fake, k=k, backend=backend), oracle_prdc(real, fake, k))


@pytest.mark.parametrize("backend", BACKENDS)
def test_duplicates_and_exact_ties_on_an_integer_lattice(backend):
    # integer coordinates: every squared distance is an exact integer, so many pairs tie exactly at a radius
    rng = np.random.default_rng(0)
    real = rng.integers(0, 4, size=(60, 3)).astype(np.float32)  # many duplicated points
    fake = np.concatenate([real[:20], rng.integers(0, 5, size=(25, 3))]).astype(np.float32)
    for k in (1, 2, 3, 7):
        expected = oracle_prdc(real, fake, k)
        assert_same(prdc(real, fake, k=k, backend=backend), expected)
    # the lattice really produces ties at the radius (otherwise this test would not test them)
    rr = sq_dist(real, real)
    np.fill_diagonal(rr, np.inf)
    radius = np.sort(rr, axis=1)[:, 2]
    assert (sq_dist(real, fake) == radius[:, None]).sum() > 20


@pytest.mark.parametrize("backend", BACKENDS)
def test_synthetic_copies_of_real_points_tie_exactly_at_radii(backend):
    # memorisation: copies of real points make d(real_i, copy) equal to real_i's own k-NN distances
    rng = np.random.default_rng(12)
    real = rng.normal(size=(110, 37)).astype(np.float32)
    fake = np.concatenate([real[70:100], rng.normal(size=(40, 37))]).astype(np.float32)
    assert_same(prdc(real, fake, k=3, backend=backend), oracle_prdc(real, fake, 3))


def test_backends_agree_exactly():
    if "cpp" not in BACKENDS:
        pytest.skip("medsyn._kernels with the k-NN kernels is not built")
    rng = np.random.default_rng(13)
    real = np.concatenate([rng.normal(size=(150, 20)), rng.integers(0, 2, size=(60, 20))]).astype(np.float32)
    fake = np.concatenate([real[100:180], rng.normal(size=(90, 20))]).astype(np.float32)
    assert prdc(real, fake, k=5, backend="cpp") == prdc(real, fake, k=5, backend="torch")


@pytest.mark.parametrize("backend", BACKENDS)
def test_large_offset_and_norms_still_exact(backend):
    # features with norm ~ 1e3 and small spread: float32 ||a||^2+||b||^2-2ab alone would be useless here
    rng = np.random.default_rng(3)
    offset = rng.normal(size=64) * 150
    real = (offset + rng.normal(size=(50, 64)) * 0.05).astype(np.float32)
    fake = (offset + rng.normal(size=(40, 64)) * 0.05).astype(np.float32)
    assert_same(prdc(real, fake, k=3, backend=backend), oracle_prdc(real, fake, 3))


@pytest.mark.parametrize("backend", BACKENDS)
def test_block_size_does_not_change_the_result(backend):
    rng = np.random.default_rng(5)
    real = rng.normal(size=(70, 16)).astype(np.float32)
    fake = rng.normal(size=(45, 16)).astype(np.float32)
    results = [prdc(real, fake, k=3, backend=backend, block=b) for b in (1, 7, 32, 4096)]
    assert all(r == results[0] for r in results)
    assert_same(results[0], oracle_prdc(real, fake, 3))


def test_mode_collapse_convention():
    # torch-fidelity's convention test: synthetic samples from one of ten modes -> precision stays high,
    # recall (and coverage) drop to about one tenth.
    rng = np.random.default_rng(7)
    centres = rng.normal(size=(10, 32)) * 10
    real = (centres[rng.integers(0, 10, 500)] + rng.normal(size=(500, 32))).astype(np.float32)
    fake = (centres[0] + rng.normal(size=(300, 32))).astype(np.float32)
    diverse = (centres[rng.integers(0, 10, 300)] + rng.normal(size=(300, 32))).astype(np.float32)
    m, baseline = prdc(real, fake, k=3), prdc(real, diverse, k=3)
    assert baseline["recall"] > 0.7 and baseline["coverage"] > 0.6
    assert m["precision"] > 0.8 and m["precision"] > baseline["precision"] - 0.1
    assert m["recall"] < 0.2
    assert m["coverage"] < 0.2
    swapped = prdc(fake, real, k=3)  # roles swapped: the collapsed set is now "real"
    assert swapped["precision"] == m["recall"] and swapped["recall"] == m["precision"]  # P and R are dual


def test_identical_sets_are_perfect():
    rng = np.random.default_rng(9)
    x = rng.normal(size=(40, 5)).astype(np.float32)
    m = prdc(x, x.copy(), k=3)
    assert m["precision"] == 1.0 and m["recall"] == 1.0 and m["coverage"] == 1.0
    assert m["density"] >= 1.0  # every point is inside its own ball plus its neighbours'


def test_torch_float64_noncontiguous_inputs():
    rng = np.random.default_rng(11)
    real64 = rng.normal(size=(12, 40)).astype(np.float32).astype(np.float64)
    fake64 = rng.normal(size=(20, 40)).astype(np.float32).astype(np.float64)
    real_t = torch.from_numpy(np.asfortranarray(real64))  # non-contiguous (column-major) float64
    fake_t = torch.from_numpy(fake64.T.copy()).T
    assert not fake_t.is_contiguous()
    assert_same(prdc(real_t, fake_t, k=2), oracle_prdc(real64, fake64, 2))


@pytest.mark.parametrize(
    "real, fake, k, match",
    [
        (np.zeros((5, 3)), np.zeros((5, 4)), 2, "feature dimension"),
        (np.zeros((5, 3)), np.zeros((0, 3)), 2, "synthetic_features"),
        (np.zeros((5,)), np.zeros((5, 3)), 2, "real_features"),
        (np.full((5, 3), np.nan), np.zeros((5, 3)), 2, "real_features"),
        (np.zeros((5, 3)), np.full((5, 3), np.inf), 2, "synthetic_features"),
        (np.zeros((5, 3)), np.zeros((3, 3)), 3, "k=3"),
        (np.zeros((3, 3)), np.zeros((9, 3)), 3, "k=3"),
        (np.zeros((5, 3)), np.zeros((5, 3)), 0, "k must be"),
    ],
)
def test_bad_input_raises_value_error(real, fake, k, match):
    with pytest.raises(ValueError, match=match):
        prdc(real, fake, k=k)


def test_unknown_backend_is_rejected():
    with pytest.raises(ValueError, match="backend"):
        prdc(np.zeros((5, 2)), np.zeros((5, 2)), k=1, backend="fortran")
