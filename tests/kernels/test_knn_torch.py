"""The pure-torch k-NN scans (oracle + fallback) against full float64 numpy matrices."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch

from medsyn.kernels import knn_torch


def sq_dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return ((a[:, None, :].astype(np.float64) - b[None].astype(np.float64)) ** 2).sum(-1)


def oracle_topk(sq: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.lexsort((np.broadcast_to(np.arange(sq.shape[1]), sq.shape), sq), axis=1)[:, :k]
    return np.take_along_axis(sq, order, 1), order


@pytest.mark.parametrize("k", [1, 3, 12])
@pytest.mark.parametrize("block", [1, 6, 1024])
def test_self_topk_with_duplicates_matches_oracle(k, block):
    rng = np.random.default_rng(k)
    x = rng.integers(0, 3, size=(45, 3)).astype(np.float32)  # heavy duplication: exercises the exact rescan
    values, indices = knn_torch.knn_sq_distances_self(torch.from_numpy(x), k, block=block)
    sq = sq_dist(x, x)
    np.fill_diagonal(sq, np.inf)
    expected_values, expected_indices = oracle_topk(sq, k)
    np.testing.assert_array_equal(values.numpy(), expected_values)
    np.testing.assert_array_equal(indices.numpy(), expected_indices)


@pytest.mark.parametrize("self_offset", [None, 0, 10, -5])
def test_topk_against_a_shard_with_self_offset(self_offset):
    rng = np.random.default_rng(0)
    queries = rng.normal(size=(30, 6)).astype(np.float32)
    reference = queries[10:25] if self_offset == 10 else rng.normal(size=(15, 6)).astype(np.float32)
    if self_offset == -5:
        reference = np.concatenate([rng.normal(size=(5, 6)), queries[:10]]).astype(np.float32)
    k = 4
    values, indices = knn_torch.knn_sq_distances(
        torch.from_numpy(queries),
        torch.from_numpy(reference),
        k,
        self_offset=self_offset,
        block_rows=7,
        block_cols=4,
    )
    sq = sq_dist(queries, reference)
    if self_offset is not None:
        rows = np.arange(30)
        own = rows + self_offset
        ok = (own >= 0) & (own < len(reference))
        sq[rows[ok], own[ok]] = np.inf
    expected_values, expected_indices = oracle_topk(sq, k)
    # random reals: float64 sums in another order differ in the last bit; indices must agree exactly
    np.testing.assert_allclose(values.numpy(), expected_values, rtol=1e-14, atol=0)
    np.testing.assert_array_equal(indices.numpy(), expected_indices)


def test_ball_membership_matches_oracle_with_ties():
    rng = np.random.default_rng(1)
    centers = rng.integers(0, 5, size=(50, 2)).astype(np.float32)
    points = rng.integers(0, 5, size=(40, 2)).astype(np.float32)
    center_r = rng.integers(0, 4, size=50).astype(np.float64)  # integer squared radii: ties with distances
    point_r = rng.integers(0, 4, size=40).astype(np.float64)
    counts, reached, inside = knn_torch.ball_membership(
        torch.from_numpy(centers),
        torch.from_numpy(center_r),
        torch.from_numpy(points),
        torch.from_numpy(point_r),
        block_rows=9,
        block_cols=13,
    )
    sq = sq_dist(centers, points)
    np.testing.assert_array_equal(counts.numpy(), (sq <= center_r[:, None]).sum(0))
    np.testing.assert_array_equal(reached.numpy(), (sq <= center_r[:, None]).any(1))
    np.testing.assert_array_equal(inside.numpy(), (sq <= point_r[None, :]).any(1))
    assert (sq == center_r[:, None]).sum() > 10  # ties at the radius really occur


def exact_fraction_sq(a: np.ndarray, b: np.ndarray) -> Fraction:
    return sum((Fraction(float(x)) - Fraction(float(y))) ** 2 for x, y in zip(a, b))


def test_exact_sq_rows_is_the_exact_value_rounded_once():
    rng = np.random.default_rng(6)
    a = rng.normal(size=(40, 33)).astype(np.float32)
    b = (a + rng.normal(size=(40, 33)) * 1e-4).astype(np.float32)  # near-duplicates: heavy cancellation
    b[:5] = (
        rng.normal(size=(5, 33)).astype(np.float32) * 1e-12
    )  # exponent gaps > 2^29: the difference is inexact
    got = knn_torch.exact_sq_rows(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    expected = np.array([float(exact_fraction_sq(x, y)) for x, y in zip(a, b)])  # float(Fraction) rounds once
    np.testing.assert_array_equal(got, expected)
    # summation order does not matter: permuting the features gives bitwise the same values
    perm = rng.permutation(33)
    np.testing.assert_array_equal(
        knn_torch.exact_sq_rows(torch.from_numpy(a[:, perm]), torch.from_numpy(b[:, perm])).numpy(), got
    )
    kernels = compiled_kernels()
    if kernels is not None:  # the C++ kernel (16-lane double-double) gives the same doubles
        compiled = [
            kernels.knn_sq_distances(a[i : i + 1], b[i : i + 1], 1, None, 0, 0)[0][0, 0] for i in range(40)
        ]
        np.testing.assert_array_equal(compiled, expected)


def test_rounding_bound_covers_observed_float32_error():
    # The bound must hold; check it on adversarial data (large common offset, d = 2048).
    rng = np.random.default_rng(2)
    a = (rng.normal(size=(64, 2048)) + 30).astype(np.float32)
    b = (rng.normal(size=(48, 2048)) * 0.5 + 30).astype(np.float32)
    at, bt = torch.from_numpy(a), torch.from_numpy(b)
    tiles = knn_torch._CentredTiles(knn_torch._center_of(at, bt), 2048)
    pa, pb = tiles.prepare(at), tiles.prepare(bt)
    error = (tiles.tile(pa, pb).double() - torch.from_numpy(sq_dist(a, b))).abs()
    bound = tiles.bound(pa[1], pb[1])
    assert (error <= bound).all()
    assert error.max() > 0  # the float32 tile is not exact, so the bound is doing work


def compiled_kernels():
    try:
        import medsyn._kernels as kernels
    except ImportError:
        return None
    return kernels if hasattr(kernels, "knn_sq_distances") else None


@pytest.mark.skipif(compiled_kernels() is None, reason="medsyn._kernels with the k-NN kernels is not built")
@pytest.mark.parametrize("seed", [0, 1])
def test_torch_twin_equals_the_compiled_kernels(seed):
    kernels = compiled_kernels()
    rng = np.random.default_rng(seed)
    # mixture of continuous values and duplicated lattice points, 100+ rows so several tiles are used
    x = np.concatenate([rng.normal(size=(70, 37)), rng.integers(0, 2, size=(40, 37))]).astype(np.float32)
    y = np.concatenate([rng.normal(size=(60, 37)), x[75:100]]).astype(np.float32)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for k in (1, 4):
        tv, ti = knn_torch.knn_sq_distances_self(xt, k, block=32)
        cv, ci = kernels.knn_sq_distances_self(x, k, 48)
        np.testing.assert_array_equal(cv, tv.numpy())  # both exact, rounded once: bitwise equal
        np.testing.assert_array_equal(ci, ti.numpy())
        tv, ti = knn_torch.knn_sq_distances(yt, xt, k, self_offset=None)
        cv, ci = kernels.knn_sq_distances(y, x, k, None, 48, 96)
        np.testing.assert_array_equal(cv, tv.numpy())
        np.testing.assert_array_equal(ci, ti.numpy())
    radii_x = knn_torch.knn_sq_distances_self(xt, 3)[0][:, 2]
    radii_y = knn_torch.knn_sq_distances_self(yt, 3)[0][:, 2]
    torch_result = knn_torch.ball_membership(xt, radii_x, yt, radii_y)
    cpp_result = kernels.ball_membership(
        x, radii_x.contiguous().numpy(), y, radii_y.contiguous().numpy(), 48, 48
    )
    for twin, compiled in zip(torch_result, cpp_result):
        np.testing.assert_array_equal(twin.numpy().astype(np.int64), compiled.astype(np.int64))


def emulated_merge(tile, values, indices, col_offset, row_offset, self_offset):
    """Python model of csrc/cuda/knn.cu topk_merge (in place, one row at a time)."""
    for i in range(tile.shape[0]):
        own = None if self_offset is None else row_offset + i + self_offset
        for j in range(tile.shape[1]):
            at = int(torch.argmax(values[i]))
            if tile[i, j] < values[i, at] and col_offset + j != own:
                values[i, at] = tile[i, j]
                indices[i, at] = col_offset + j


def test_device_tile_path_of_the_cuda_backend_on_cpu():
    # the CUDA backend = torch twin + device tile products + in-place top-k merge; check that path here
    from medsyn.metrics.neighbors import device_tile_backend

    backend = device_tile_backend("emulated", knn_torch.torch_tile_products, emulated_merge)
    rng = np.random.default_rng(9)
    x = np.concatenate([rng.normal(size=(30, 5)), rng.integers(0, 2, size=(20, 5))]).astype(np.float32)
    y = rng.normal(size=(25, 5)).astype(np.float32)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    v, i = backend.knn_sq_distances_self(xt, 3, block=16)
    tv, ti = knn_torch.knn_sq_distances_self(xt, 3)
    assert torch.equal(v, tv) and torch.equal(i, ti)
    v, i = backend.knn_sq_distances(yt, xt, 2, block_rows=7, block_cols=11)
    tv, ti = knn_torch.knn_sq_distances(yt, xt, 2)
    assert torch.equal(v, tv) and torch.equal(i, ti)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")
def test_cuda_backend_equals_cpu():
    from medsyn.metrics.neighbors import nearest_neighbors
    from medsyn.metrics.prdc import prdc

    rng = np.random.default_rng(10)
    real = rng.normal(size=(300, 64)).astype(np.float32)
    fake = np.concatenate([real[:50], rng.normal(size=(200, 64))]).astype(np.float32)
    cpu = prdc(real, fake, k=3, backend="torch")
    gpu = prdc(torch.from_numpy(real).cuda(), torch.from_numpy(fake).cuda(), k=3, backend="cuda")
    assert gpu == cpu
    d, i = nearest_neighbors(torch.from_numpy(fake).cuda(), torch.from_numpy(real).cuda(), backend="cuda")
    dc, ic = nearest_neighbors(fake, real, backend="torch")
    assert torch.equal(d.cpu(), dc) and torch.equal(i.cpu(), ic)


def test_reduced_precision_matmul_setting_does_not_break_exactness():
    rng = np.random.default_rng(11)
    x = (rng.normal(size=(60, 300)) + 5).astype(np.float32)
    previous = torch.get_float32_matmul_precision()
    try:
        torch.set_float32_matmul_precision("medium")  # would allow bf16/TF32 products where supported
        values, indices = knn_torch.knn_sq_distances_self(torch.from_numpy(x), 2)
    finally:
        torch.set_float32_matmul_precision(previous)
    sq = sq_dist(x, x)
    np.fill_diagonal(sq, np.inf)
    expected_values, expected_indices = oracle_topk(sq, 2)
    np.testing.assert_allclose(values.numpy(), expected_values, rtol=1e-14, atol=0)
    np.testing.assert_array_equal(indices.numpy(), expected_indices)
