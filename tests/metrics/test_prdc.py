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


# ---- issue 11 item 7: numerics at the edges, ball conventions ----------------------------------------------


def oracle_prdc_ball(real: np.ndarray, fake: np.ndarray, k: int, ball: str) -> dict[str, float]:
    """oracle_prdc with the membership of ``ball``: "closed" d <= r, "open" d < r (the prdc package)."""
    inside = np.less_equal if ball == "closed" else np.less
    rr, ff, rf = sq_dist(real, real), sq_dist(fake, fake), sq_dist(real, fake)
    np.fill_diagonal(rr, np.inf)
    np.fill_diagonal(ff, np.inf)
    rad_r = np.sort(rr, axis=1)[:, k - 1]
    rad_f = np.sort(ff, axis=1)[:, k - 1]
    inside_real = inside(rf, rad_r[:, None])
    return {
        "precision": inside_real.any(0).mean(),
        "recall": inside(rf, rad_f[None, :]).any(1).mean(),
        "density": inside_real.sum() / (k * fake.shape[0]),
        "coverage": inside(rf.min(1), rad_r).mean(),
    }


def relative_margin_to_radii(real: np.ndarray, fake: np.ndarray, k: int) -> float:
    """Smallest |d^2 - r^2| / r^2 over every decision PRDC takes: how far from flipping rounding is."""
    rr, ff, rf = sq_dist(real, real), sq_dist(fake, fake), sq_dist(real, fake)
    np.fill_diagonal(rr, np.inf)
    np.fill_diagonal(ff, np.inf)
    rad_r, rad_f = np.sort(rr, axis=1)[:, k - 1], np.sort(ff, axis=1)[:, k - 1]
    return float(min((np.abs(rf - rad_r[:, None]) / rad_r[:, None]).min(), (np.abs(rf - rad_f) / rad_f).min()))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("scale", [1e20, 1e-20, 3e30, 1e-30])
def test_any_finite_float32_scale_gives_the_unit_scale_result(backend, scale):
    # The case: before, 1e20 gave precision 1 and density ~8 (float32 tiles overflowed to inf).
    rng = np.random.default_rng(21)
    real = rng.normal(size=(60, 24)).astype(np.float32)
    fake = (rng.normal(size=(50, 24)) * 1.3 + 0.2).astype(np.float32)
    # scaling by a decimal rounds each coordinate once (relative 6e-8, moving squared distances by well
    # under 1e-6 relative here): no decision of this data set is that close to its radius
    assert relative_margin_to_radii(real, fake, 3) > 1e-5
    scaled_real, scaled_fake = real * np.float32(scale), fake * np.float32(scale)
    assert np.isfinite(scaled_real).all() and np.isfinite(scaled_fake).all()
    result = prdc(scaled_real, scaled_fake, k=3, backend=backend)
    assert result == prdc(real, fake, k=3, backend=backend)
    assert_same(result, oracle_prdc(scaled_real, scaled_fake, 3))  # float64 oracle on the scaled data itself
    assert 0 < result["precision"] < 1 and 0 < result["coverage"] < 1  # not the degenerate overflow answer


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("exponent", [120, 70, -70, -120, -140])  # 2^120 * 4: near float32 max; 2^-140: subnormal
@pytest.mark.parametrize("ball", ["closed", "open"])
def test_power_of_two_scales_keep_every_exact_tie(backend, exponent, ball):
    # a power of two scales every squared distance exactly: ties at the radii stay ties, so even the
    # lattice with many ties must give exactly the unscaled numbers, for both ball conventions
    rng = np.random.default_rng(4)
    real = rng.integers(0, 4, size=(50, 3)).astype(np.float32)
    fake = np.concatenate([real[:15], rng.integers(0, 5, size=(20, 3))]).astype(np.float32)
    scaled_real = real * np.float32(2.0**exponent)
    scaled_fake = fake * np.float32(2.0**exponent)
    assert np.array_equal(scaled_real.astype(np.float64) / 2.0**exponent, real)  # the scaling itself was exact
    expected = oracle_prdc_ball(real, fake, 2, ball)
    assert_same(prdc(scaled_real, scaled_fake, k=2, backend=backend, ball=ball), expected)


def test_float64_features_beyond_float32_range_are_scaled_not_reported_as_inf():
    rng = np.random.default_rng(8)
    real = rng.normal(size=(30, 6)).astype(np.float32)
    fake = rng.normal(size=(25, 6)).astype(np.float32)
    big_real, big_fake = real.astype(np.float64) * 2.0**130, fake.astype(np.float64) * 2.0**130  # ~1e39
    assert np.abs(big_real).max() > np.finfo(np.float32).max
    assert prdc(big_real, big_fake, k=3) == prdc(real, fake, k=3)


def test_a_dynamic_range_float32_cannot_hold_at_one_scale_is_refused_naming_the_arguments():
    real = np.ones((6, 4), dtype=np.float32)
    real[0, 0] = 3e38  # needs scaling down by ~2^-74 ...
    fake = np.full((6, 4), 1e-44, dtype=np.float32)  # ... which would flush these subnormals to zero
    with pytest.raises(ValueError, match="real_features and synthetic_features"):
        prdc(real, fake, k=2)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("ball", ["closed", "open"])
def test_open_and_closed_balls_match_their_oracle_on_exact_ties(backend, ball):
    rng = np.random.default_rng(0)
    real = rng.integers(0, 4, size=(60, 3)).astype(np.float32)  # duplicates: zero radii and ties at radii
    fake = np.concatenate([real[:20], rng.integers(0, 5, size=(25, 3))]).astype(np.float32)
    for k in (1, 2, 3, 7):
        assert_same(prdc(real, fake, k=k, backend=backend, ball=ball), oracle_prdc_ball(real, fake, k, ball))


def test_open_balls_differ_from_closed_balls_only_through_ties():
    rng = np.random.default_rng(0)
    real = rng.integers(0, 4, size=(60, 3)).astype(np.float32)
    fake = np.concatenate([real[:20], rng.integers(0, 5, size=(25, 3))]).astype(np.float32)
    closed, opened = prdc(real, fake, k=3), prdc(real, fake, k=3, ball="open")
    assert closed == prdc(real, fake, k=3, ball="closed")  # closed is the default
    assert all(opened[key] <= closed[key] for key in closed)  # an open ball is a subset of the closed one
    assert opened["density"] < closed["density"] and opened["precision"] < closed["precision"]
    # without ties the conventions agree exactly
    generic_real = rng.normal(size=(40, 5)).astype(np.float32)
    generic_fake = rng.normal(size=(30, 5)).astype(np.float32)
    assert prdc(generic_real, generic_fake, k=3, ball="open") == prdc(generic_real, generic_fake, k=3)


def test_zero_radius_open_ball_is_empty():
    # k = 1 and every real point duplicated: every real radius is 0; a synthetic copy sits on the centre
    real = np.repeat(np.arange(5, dtype=np.float32)[:, None] * [1.0, 2.0], 2, axis=0).astype(np.float32)
    fake = real[::2] + np.float32(0.0)
    fake = np.concatenate([fake, fake + 10]).astype(np.float32)
    closed, opened = prdc(real, fake, k=1), prdc(real, fake, k=1, ball="open")
    assert closed["precision"] == 0.5 and closed["coverage"] == 1.0 and closed["density"] == 1.0
    assert opened["precision"] == 0.0 and opened["coverage"] == 0.0 and opened["density"] == 0.0


def test_unknown_ball_is_refused_naming_the_argument():
    with pytest.raises(ValueError, match="ball must be one of"):
        prdc(np.zeros((5, 2)), np.zeros((5, 2)), k=1, ball="half-open")


@pytest.mark.parametrize(
    "real, match",
    [
        (np.ones((5, 3), dtype=np.complex128), "real_features must be real, got complex"),
        (torch.ones(5, 3, dtype=torch.complex64), "real_features must be real, got complex"),
        (np.full((5, 3), 2**53 + 1, dtype=np.int64), "real_features holds integers"),
    ],
)
def test_complex_and_huge_integer_features_are_refused(real, match):
    with pytest.raises(ValueError, match=match):
        prdc(real, np.zeros((5, 3)), k=1)
