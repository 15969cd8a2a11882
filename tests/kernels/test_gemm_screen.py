"""The float64 GEMM screen of nearest_neighbors: the same exact answer as the float32 tile scans, bit for bit.

Oracles: the tile scans themselves (``screen="off"``, compiled and pure torch) and, for small d, the exact
squared distance in rational arithmetic (``fractions.Fraction``) rounded once to float64.
"""

from __future__ import annotations

from fractions import Fraction

import pytest
import torch

from medsyn.kernels.gemm_screen import nearest_sq_screened, screen_bound_factor
from medsyn.kernels.knn_torch import exact_sq_distances
from medsyn.metrics import nearest_neighbors
from medsyn.metrics.neighbors import SCREEN_MIN_DIM


def _rational_nearest(queries: torch.Tensor, reference: torch.Tensor, exclude_self: bool = False):
    distances, indices = [], []
    for i, q in enumerate(queries.double().tolist()):
        best = None
        for j, r in enumerate(reference.double().tolist()):
            if exclude_self and i == j:
                continue
            sq = sum((Fraction(a) - Fraction(b)) ** 2 for a, b in zip(q, r))
            if best is None or sq < best[0]:
                best = (sq, j)
        distances.append(float(best[0]))
        indices.append(best[1])
    return torch.tensor(distances, dtype=torch.float64), torch.tensor(indices)


def _with_ties(q: int, n: int, d: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    queries = torch.rand(q, d, generator=generator)
    reference = torch.rand(n, d, generator=generator)
    reference[4] = queries[1]  # an exact copy, twice: the smaller index wins
    reference[2] = queries[1]
    reference[6] = queries[3]
    reference[6, 0] = torch.nextafter(queries[3, 0], torch.tensor(2.0))  # one float32 step away
    return queries, reference


@pytest.mark.parametrize("backend", ["cpp", "torch"])
@pytest.mark.parametrize("dim", [3, 17, 4096 + 5])
def test_screen_equals_tile_scan_bit_for_bit(backend: str, dim: int) -> None:
    queries, reference = _with_ties(9, 11, dim, seed=dim)
    tiles = nearest_neighbors(queries, reference, backend=backend, screen="off")
    screened = nearest_neighbors(queries, reference, backend=backend, screen="on")
    assert torch.equal(tiles[0], screened[0]) and torch.equal(tiles[1], screened[1])
    assert screened[1][1] == 2 and screened[0][1] == 0.0 and screened[1][3] == 6 and screened[0][3] > 0.0


def test_screen_equals_rational_arithmetic() -> None:
    queries, reference = _with_ties(6, 8, 13, seed=1)
    queries[0] *= 1e6  # a query far from everything: large norms, cancellation in ||a||^2 + ||b||^2 - 2ab
    reference[7] = queries[0] + 1e-3
    expected = _rational_nearest(queries, reference)
    got = nearest_sq_screened(queries, reference, block_rows=2, block_cols=3)  # several blocks each way
    assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])
    expected_self = _rational_nearest(reference, reference, exclude_self=True)
    got_self = nearest_sq_screened(reference, reference, exclude_self=True, block_rows=3, block_cols=2)
    assert torch.equal(got_self[0], expected_self[0]) and torch.equal(got_self[1], expected_self[1])


def test_exclude_self_and_scaling_match_the_tile_scan() -> None:
    _, reference = _with_ties(5, 12, SCREEN_MIN_DIM, seed=3)
    tiles = nearest_neighbors(reference, reference, exclude_self=True, screen="off")
    assert all(torch.equal(a, b) for a, b in zip(tiles, nearest_neighbors(reference, reference, exclude_self=True)))
    huge = reference.double() * 2.0**140  # beyond float32: scaled by a power of two first, then screened
    scaled_tiles = nearest_neighbors(huge, huge, exclude_self=True, screen="off")
    scaled_screen = nearest_neighbors(huge, huge, exclude_self=True, screen="on")
    assert torch.equal(scaled_tiles[0], scaled_screen[0]) and torch.equal(scaled_tiles[1], scaled_screen[1])


def test_bound_holds_where_cancellation_is_worst() -> None:
    # pairs of nearly equal long rows: ||a||^2 + ||b||^2 - 2ab cancels to a tiny fraction of the norms
    generator = torch.Generator().manual_seed(0)
    dim = 50_000
    a = torch.rand(4, dim, generator=generator) + 100.0
    b = a + torch.rand(4, dim, generator=generator) * 1e-4
    estimate = (a.double().square().sum(1)[:, None] + b.double().square().sum(1)[None, :]) - 2.0 * (
        a.double() @ b.double().T)
    bound = screen_bound_factor(dim) * (a.double().norm(dim=1)[:, None] + b.double().norm(dim=1)[None, :]) ** 2
    rows, cols = torch.meshgrid(torch.arange(4), torch.arange(4), indexing="ij")
    exact = exact_sq_distances(a, rows.flatten(), b, cols.flatten()).reshape(4, 4)
    assert bool(((estimate - exact).abs() <= bound).all())


def test_auto_screens_pixel_space_only_and_bad_switch_is_refused() -> None:
    queries, reference = _with_ties(4, 7, SCREEN_MIN_DIM, seed=5)
    for screen in ("auto", "on", "off"):
        result = nearest_neighbors(queries, reference, screen=screen)
        assert result[1].tolist() == nearest_neighbors(queries, reference, screen="off")[1].tolist()
    with pytest.raises(ValueError, match="screen must be one of"):
        nearest_neighbors(queries, reference, screen="fast")
