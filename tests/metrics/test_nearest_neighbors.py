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
