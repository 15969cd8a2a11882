"""nearest_neighbors against a brute-force float64 numpy oracle, including the planted near-duplicate case."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medsyn.metrics.neighbors import knn_backend, nearest_neighbors


def available_backends() -> list[str]:
    names = ["torch"]
    try:
        knn_backend("cpp", torch.device("cpu"))
        names.append("cpp")
    except RuntimeError:  # BackendUnavailableError: extension not built
        pass
    return names


BACKENDS = available_backends()


def oracle(
    queries: np.ndarray, reference: np.ndarray, exclude_self: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    sq = ((queries[:, None, :].astype(np.float64) - reference[None].astype(np.float64)) ** 2).sum(-1)
    if exclude_self:
        np.fill_diagonal(sq, np.inf)
    index = sq.argmin(1)  # first minimum: ties -> smallest index
    return np.sqrt(sq[np.arange(len(sq)), index]), index


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("q, n, d", [(30, 50, 7), (1, 1, 1), (64, 3, 129), (100, 100, 16)])
def test_random_matches_oracle(backend, q, n, d):
    rng = np.random.default_rng(q + n + d)
    queries = rng.normal(size=(q, d)).astype(np.float32)
    reference = rng.normal(size=(n, d)).astype(np.float32)
    dist, index = nearest_neighbors(queries, reference, backend=backend)
    expected_dist, expected_index = oracle(queries, reference)
    assert dist.dtype == torch.float64 and index.dtype == torch.int64
    np.testing.assert_array_equal(index.numpy(), expected_index)
    np.testing.assert_allclose(dist.numpy(), expected_dist, rtol=1e-14, atol=0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_planted_near_duplicate_is_exact(backend):
    # norms ~60, true distance 0.064: float32 ||a||^2 + ||b||^2 - 2ab alone is off by tens of percent here
    rng = np.random.default_rng(1)
    d = 512
    reference = (rng.normal(size=(300, d)) * 60 / np.sqrt(d)).astype(np.float32)
    delta = rng.normal(size=d)
    queries = reference[[37, 150, 299]].astype(np.float64) + 0.064 * delta / np.linalg.norm(delta)
    queries = queries.astype(np.float32)
    expected_dist, expected_index = oracle(queries, reference)
    dist, index = nearest_neighbors(queries, reference, backend=backend)
    np.testing.assert_array_equal(index.numpy(), [37, 150, 299])
    np.testing.assert_array_equal(index.numpy(), expected_index)
    assert np.abs(dist.numpy() / expected_dist - 1).max() < 1e-5
    # the naive float32 expansion really is wrong on this case (so the test above can fail)
    q32, r32 = torch.from_numpy(queries), torch.from_numpy(reference[[37, 150, 299]])
    naive = ((q32.square().sum(1) + r32.square().sum(1) - 2 * (q32 * r32).sum(1)).clamp_min(0)).sqrt().numpy()
    assert np.abs(naive / expected_dist - 1).max() > 1e-2


@pytest.mark.parametrize("backend", BACKENDS)
def test_ties_go_to_the_smallest_index_and_duplicates(backend):
    reference = np.array([[0, 0], [2, 0], [0, 2], [2, 0], [1, 1]], dtype=np.float32)
    queries = np.array([[1, 0], [2, 0], [1, 1], [3, 3]], dtype=np.float32)
    dist, index = nearest_neighbors(queries, reference, backend=backend)
    # (1,0) is at distance 1 from rows 0, 1, 3 and 4 -> 0; (2,0) duplicates rows 1 and 3 -> 1
    np.testing.assert_array_equal(index.numpy(), [0, 1, 4, 4])
    np.testing.assert_allclose(dist.numpy(), [1, 0, 0, np.sqrt(8)])


@pytest.mark.parametrize("backend", BACKENDS)
def test_exclude_self(backend):
    rng = np.random.default_rng(4)
    x = rng.integers(0, 3, size=(40, 2)).astype(np.float32)  # many duplicates: other copies are at 0
    dist, index = nearest_neighbors(x, x, exclude_self=True, backend=backend)
    expected_dist, expected_index = oracle(x, x, exclude_self=True)
    np.testing.assert_array_equal(index.numpy(), expected_index)
    np.testing.assert_array_equal(dist.numpy(), expected_dist)
    assert (index.numpy() != np.arange(40)).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_block_size_independent(backend):
    rng = np.random.default_rng(8)
    queries = rng.normal(size=(33, 9)).astype(np.float32)
    reference = rng.normal(size=(71, 9)).astype(np.float32)
    runs = [
        nearest_neighbors(queries, reference, backend=backend, block_rows=b, block_cols=c)
        for b, c in ((1, 1), (5, 17), (1000, 1000))
    ]
    for dist, index in runs[1:]:
        assert torch.equal(dist, runs[0][0]) and torch.equal(index, runs[0][1])


def test_float64_noncontiguous_torch_input():
    rng = np.random.default_rng(2)
    reference = (
        torch.from_numpy(rng.normal(size=(10, 20)).astype(np.float32).astype(np.float64)).T.contiguous().T
    )
    queries = torch.from_numpy(rng.normal(size=(20, 6)).astype(np.float32)).T  # [6, 20], non-contiguous
    dist, index = nearest_neighbors(queries, reference)
    expected_dist, expected_index = oracle(queries.numpy(), reference.numpy())
    np.testing.assert_array_equal(index.numpy(), expected_index)
    np.testing.assert_allclose(dist.numpy(), expected_dist, rtol=1e-14)


@pytest.mark.parametrize(
    "queries, reference, kwargs, match",
    [
        (np.zeros((3, 2)), np.zeros((3, 4)), {}, "feature dimension"),
        (np.zeros((0, 2)), np.zeros((3, 2)), {}, "queries"),
        (np.zeros((3, 2)), np.zeros((0, 2)), {}, "reference"),
        (np.zeros((3, 2, 1)), np.zeros((3, 2)), {}, "queries"),
        (np.zeros((3, 2)), np.array([[0.0, np.nan]]), {}, "reference"),
        (np.zeros((3, 2)), np.zeros((4, 2)), {"exclude_self": True}, "exclude_self"),
        (np.zeros((1, 2)), np.zeros((1, 2)), {"exclude_self": True}, "reference"),
        (np.zeros((3, 2)), np.zeros((3, 2)), {"backend": "gpu"}, "backend"),
    ],
)
def test_bad_input(queries, reference, kwargs, match):
    with pytest.raises(ValueError, match=match):
        nearest_neighbors(queries, reference, **kwargs)


# ---- issue 11 item 7: any finite scale ----------------------------------------------------------------------


def cdist_oracle(queries: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from scipy.spatial.distance import cdist

    distances = cdist(queries.astype(np.float64), reference.astype(np.float64))
    index = distances.argmin(1)
    return distances[np.arange(len(distances)), index], index


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("scale", [1e20, 1e-20, 1e35, 1e-35])
def test_any_finite_float32_scale_matches_a_float64_oracle(backend, scale):
    # before: inf at 1e20 (float32 tiles overflowed)
    rng = np.random.default_rng(17)
    queries = (rng.normal(size=(40, 20)) * scale).astype(np.float32)
    reference = (rng.normal(size=(55, 20)) * scale).astype(np.float32)
    assert np.isfinite(queries).all() and np.abs(queries).min() > 0
    distances, indices = nearest_neighbors(queries, reference, backend=backend)
    expected_d, expected_i = cdist_oracle(queries, reference)
    assert np.array_equal(indices.numpy(), expected_i)
    # exact distances of these float32 values vs. float64 cdist (a few ulps of float64)
    np.testing.assert_allclose(distances.numpy(), expected_d, rtol=1e-13, atol=0)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("exponent", [90, -90])
def test_power_of_two_scale_scales_the_distances_exactly(backend, exponent):
    rng = np.random.default_rng(18)
    queries = rng.integers(0, 3, size=(30, 4)).astype(np.float32)  # exact ties between candidates
    reference = rng.integers(0, 3, size=(25, 4)).astype(np.float32)
    factor = np.float32(2.0**exponent)
    unit_d, unit_i = nearest_neighbors(queries, reference, backend=backend)
    scaled_d, scaled_i = nearest_neighbors(queries * factor, reference * factor, backend=backend)
    assert torch.equal(scaled_i, unit_i)  # ties still go to the smallest index
    assert torch.equal(scaled_d, unit_d * 2.0**exponent)


def test_float64_beyond_float32_range_gives_finite_exact_distances():
    rng = np.random.default_rng(19)
    queries = rng.normal(size=(10, 3)).astype(np.float32).astype(np.float64)
    reference = rng.normal(size=(12, 3)).astype(np.float32).astype(np.float64)
    distances, indices = nearest_neighbors(queries * 2.0**130, reference * 2.0**130)  # ~1e39: inf in float32
    unit_d, unit_i = nearest_neighbors(queries, reference)
    assert torch.equal(indices, unit_i)
    assert torch.equal(distances, unit_d * 2.0**130)
    assert torch.isfinite(distances).all()


@pytest.mark.parametrize(
    "queries, match",
    [
        (np.ones((4, 2), dtype=np.complex64), "queries must be real, got complex"),
        (np.array([[2**60, 0], [1, 2]], dtype=np.int64), r"queries holds integers in \[0, 1152921504606846976\]"),
        (np.array([[2**64 - 1, 0]], dtype=np.uint64), "queries holds integers"),
    ],
)
def test_complex_and_inexact_integers_are_refused(queries, match):
    with pytest.raises(ValueError, match=match):
        nearest_neighbors(queries, np.zeros((3, 2)))


def test_integers_up_to_two_to_the_53_are_accepted():
    queries = np.array([[2**53, 0], [-(2**53), 1]], dtype=np.int64)
    distances, indices = nearest_neighbors(queries, queries)
    assert torch.equal(indices, torch.tensor([0, 1])) and torch.equal(distances, torch.zeros(2, dtype=torch.float64))
