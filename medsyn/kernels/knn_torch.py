"""Pure-torch k-NN scans: the oracle for the compiled kernels and the fallback when they are missing.

All scans are blocked: a [block_rows, block_cols] tile of squared Euclidean distances is computed GEMM-style
in float32 as ``||a||^2 + ||b||^2 - 2 a.b`` on mean-centred data, consumed, and dropped, so memory never
grows with n x m. Decisions are nevertheless exact:

* every float32 tile value carries a rigorous rounding bound ``B_ij = f(d) * (||a_i||^2 + ||b_j||^2)``
  (centred norms, ``f(d) = 2 (d + 16) 2^-24``: rounding of the centring, the norms, the dot product
  summed in any order, and the final additions; see ``rounding_bound_factor``);
* a membership test ``d_ij^2 <= r^2`` whose float32 value lies within that bound of ``r^2`` is recomputed
  exactly (error-free transformations summed in double-double, rounded once to float64: ``exact_sq_rows``);
* top-k scans keep ``k + EXTRA_CANDIDATES`` float32 candidates per row, recompute them in float64, and
  certify the result: every point that was not kept has float32 value >= the largest kept one ``T``, so
  its exact value is >= ``T - B_max``; if that is not strictly above the k-th exact value, the row is
  rescanned exactly in float64 (rare: many exact duplicates, or a rounding-sized gap).

"Exact" means the exact squared distances of the float32 values the features were converted to (the public API
converts inputs to float32 once), rounded once to float64. Ties are broken by the smaller reference index.

Shapes: features float32 [n, d]; squared distances float64; indices int64.
Range: the tiles must not overflow, so every |x| must stay below 2^T(d) (``tile_exponent_limit`` in
``medsyn.metrics.neighbors``, 2^54 at d = 2048); the public functions scale inputs by a power of two first.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = [
    "EXTRA_CANDIDATES",
    "ball_membership",
    "exact_sq_distances",
    "knn_sq_distances",
    "knn_sq_distances_self",
    "rounding_bound_factor",
]

# Float32 candidates kept beyond the k wanted: enough that near-ties reordered by float32 rounding are
# still among the candidates, so the exact rescan of a row is rare.
EXTRA_CANDIDATES = 8
DEFAULT_BLOCK_ROWS = 1024
DEFAULT_BLOCK_COLS = 2048
_UNIT_ROUNDOFF_F32 = 2.0**-24
_PAIR_CHUNK = 512  # pairs recomputed exactly at a time (bounds memory to a few PAIR_CHUNK x d doubles)


def rounding_bound_factor(dim: int) -> float:
    """f(d) with |float32 tile value - exact squared distance| <= f(d) * (||a_c||^2 + ||b_c||^2).

    Sum of: centring rounding (<= 4u), dot product in any summation order (gamma_d <= 1.01 d u, doubled
    for -2ab is absorbed because ||a||*||b|| <= (||a||^2+||b||^2)/2), norm rounding and two additions
    (<= 5u). Doubled as a safety margin; an extra absolute term in ``_bound`` covers underflow.
    """
    return 2.0 * (dim + 16) * _UNIT_ROUNDOFF_F32


def _bound_abs(dim: int) -> float:
    return dim * 2.0**-120


def _two_sum(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """s + e == a + b exactly (Knuth)."""
    s = a + b
    bv = s - a
    return s, (a - (s - bv)) + (b - bv)


def _two_square(h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """p + e == h * h exactly (Dekker's product with Veltkamp's split; torch has no fused multiply-add)."""
    p = h * h
    c = 134217729.0 * h  # 2^27 + 1
    hh = c - (c - h)
    hl = h - hh
    return p, ((hh * hh - p) + 2.0 * hh * hl) + hl * hl


def exact_sq_rows(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Squared distances of row pairs a[p], b[p] (float32 [P, d]) -> float64 [P], rounded once.

    Error-free transformations summed in double-double (as the C++ kernel, which sums sequentially; this
    sums as a tree): the result is the exact value rounded once (up to ~d 2^-100 relative), so equal exact
    distances give equal doubles whatever the order, and ties at a radius are decided as exact arithmetic.
    """
    x, y = a.double(), -b.double()
    h, h_err = _two_sum(x, y)
    hi, sq_err = _two_square(h)
    lo = sq_err + 2.0 * h * h_err  # h_err^2 < 2^-106 h^2 is dropped
    while hi.shape[1] > 1:
        if hi.shape[1] % 2:
            hi = torch.nn.functional.pad(hi, (0, 1))
            lo = torch.nn.functional.pad(lo, (0, 1))
        hi, err = _two_sum(hi[:, 0::2], hi[:, 1::2])
        lo = lo[:, 0::2] + lo[:, 1::2] + err
    return (hi + lo)[:, 0]


def exact_sq_distances(
    a: torch.Tensor, a_index: torch.Tensor, b: torch.Tensor, b_index: torch.Tensor
) -> torch.Tensor:
    """Exact (once-rounded) float64 squared distances ||a[a_index[p]] - b[b_index[p]]||^2 -> [P]."""
    out = torch.empty(a_index.shape[0], dtype=torch.float64, device=a.device)
    for start in range(0, a_index.shape[0], _PAIR_CHUNK):
        stop = start + _PAIR_CHUNK
        out[start:stop] = exact_sq_rows(a[a_index[start:stop]], b[b_index[start:stop]])
    return out


TileProducts = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def torch_tile_products(
    ca: torch.Tensor, na: torch.Tensor, cb: torch.Tensor, nb: torch.Tensor
) -> torch.Tensor:
    """float32 tile [ra, rb] = na[i] + nb[j] - 2 ca_i . cb_j (centred float32 rows, float64 norms)."""
    base = na.float()[:, None] + nb.float()[None, :]
    if torch.get_float32_matmul_precision() != "highest" or (
        ca.is_cuda and torch.backends.cuda.matmul.allow_tf32
    ):  # TF32/bf16 matmuls would break the float32 rounding bound: do the products in float64 instead
        return (base.double() - 2.0 * (ca.double() @ cb.double().T)).float()
    return torch.addmm(base, ca, cb.T, beta=1.0, alpha=-2.0)


class _CentredTiles:
    """Float32 distance tiles between blocks of centred rows, with their rounding bounds.

    ``products`` computes a tile (default: torch GEMM; the CUDA backend passes its tile kernel).
    """

    def __init__(self, center: torch.Tensor, dim: int, products: TileProducts | None = None) -> None:
        self.center = center  # float32 [d]; any shift works, it only has to be the same for both sides
        self.factor = rounding_bound_factor(dim)
        self.abs_bound = _bound_abs(dim)
        self.products = products or torch_tile_products

    def prepare(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        centred = rows - self.center
        norms = centred.double().square().sum(1)
        return centred, norms

    def tile(
        self, a: tuple[torch.Tensor, torch.Tensor], b: tuple[torch.Tensor, torch.Tensor]
    ) -> torch.Tensor:
        (ca, na), (cb, nb) = a, b
        return self.products(ca, na, cb, nb)

    def bound(self, na: torch.Tensor, nb: torch.Tensor) -> torch.Tensor:
        return self.factor * (na[:, None] + nb[None, :]) + self.abs_bound


def _center_of(*sets: torch.Tensor) -> torch.Tensor:
    total = sum(s.double().sum(0) for s in sets)
    return (total / sum(s.shape[0] for s in sets)).float()


def _merge_topk(
    values: torch.Tensor, indices: torch.Tensor, tile: torch.Tensor, tile_indices: torch.Tensor, keep: int
) -> tuple[torch.Tensor, torch.Tensor]:
    all_values = torch.cat([values, tile], dim=1)
    all_indices = torch.cat([indices, tile_indices.expand(tile.shape[0], -1)], dim=1)
    keep = min(keep, all_values.shape[1])
    best_values, where = torch.topk(all_values, keep, dim=1, largest=False, sorted=False)
    return best_values, torch.gather(all_indices, 1, where)


def _finish_topk(
    queries: torch.Tensor,
    reference: torch.Tensor,
    cand_values: torch.Tensor,
    cand_indices: torch.Tensor,
    k: int,
    query_norms: torch.Tensor,
    max_reference_norm: float,
    factor: float,
    self_offset: int | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact recompute of the float32 candidates, certification, exact rescan of uncertified rows."""
    q, keep = cand_indices.shape
    valid = cand_indices >= 0
    rows = torch.arange(q, device=queries.device)[:, None].expand(q, keep)
    exact = torch.full((q, keep), float("inf"), dtype=torch.float64, device=queries.device)
    exact[valid] = exact_sq_distances(queries, rows[valid], reference, cand_indices[valid])
    big_index = torch.where(valid, cand_indices, torch.iinfo(torch.int64).max)
    # sort by (exact value, index): stable sort by value after sorting by index
    by_index = torch.argsort(big_index, dim=1, stable=True)
    exact, big_index = torch.gather(exact, 1, by_index), torch.gather(big_index, 1, by_index)
    by_value = torch.argsort(exact, dim=1, stable=True)
    exact, big_index = torch.gather(exact, 1, by_value)[:, :k], torch.gather(big_index, 1, by_value)[:, :k]

    # Every point not kept has float32 value >= T (the largest kept), hence exact value >= T - B_max.
    # A row is certified when that is strictly above its k-th exact value (strict: a tie could carry a
    # smaller index). Rows with fewer real candidates than `keep` saw every point.
    threshold = cand_values.double().max(dim=1).values
    complete = (~valid).any(dim=1)
    b_max = factor * (query_norms + max_reference_norm) + _bound_abs(queries.shape[1])
    certified = complete | (threshold - b_max > exact[:, k - 1])
    for row in torch.nonzero(~certified).flatten().tolist():
        exact[row], big_index[row] = _exact_row_topk(queries[row], reference, k, row, self_offset)
    return exact, big_index


def _exact_row_topk(
    query: torch.Tensor, reference: torch.Tensor, k: int, row: int, self_offset: int | None
) -> tuple[torch.Tensor, torch.Tensor]:
    parts = []
    for start in range(0, reference.shape[0], _PAIR_CHUNK):
        chunk = reference[start : start + _PAIR_CHUNK]
        parts.append(exact_sq_rows(query.expand_as(chunk), chunk))
    row_values = torch.cat(parts)
    if self_offset is not None:
        own = row + self_offset
        if 0 <= own < reference.shape[0]:
            row_values[own] = float("inf")
    # stable sort by value keeps the smaller index first among ties
    order = torch.argsort(row_values, stable=True)[:k]
    return row_values[order], order


def knn_sq_distances(
    queries: torch.Tensor,
    reference: torch.Tensor,
    k: int,
    *,
    self_offset: int | None = None,
    center: torch.Tensor | None = None,
    block_rows: int = DEFAULT_BLOCK_ROWS,
    block_cols: int = DEFAULT_BLOCK_COLS,
    products: TileProducts | None = None,
    merge: Callable[..., None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The k nearest reference rows of every query, exact.

    queries float32 [q, d], reference float32 [n, d] -> (squared distances float64 [q, k] ascending,
    indices int64 [q, k] into reference; ties -> smaller index). ``self_offset`` = s means query i is
    reference row i + s and is excluded (used when the reference is a shard of the query set; None: no
    exclusion). Requires k <= number of eligible reference rows. ``products`` / ``merge``: device kernels
    (CUDA backend) for the tile products and the in-place running top-k merge
    ``merge(tile, values, indices, col_offset, row_offset, self_offset)``.
    """
    q, dim = queries.shape
    if center is None:
        center = _center_of(reference)
    tiles = _CentredTiles(center, dim, products)
    keep = k + EXTRA_CANDIDATES
    width = keep if merge is not None else 0  # in-place merging needs the full (+inf, -1) candidate arrays
    cand_values = torch.full((q, width), float("inf"), dtype=torch.float32, device=queries.device)
    cand_indices = torch.full((q, width), -1, dtype=torch.int64, device=queries.device)
    ref_blocks = []
    max_ref_norm = 0.0
    for c0 in range(0, reference.shape[0], block_cols):
        rb = tiles.prepare(reference[c0 : c0 + block_cols])
        max_ref_norm = max(max_ref_norm, float(rb[1].max()))
        ref_blocks.append((c0, rb))
    all_values, all_indices, all_norms = [], [], []
    for r0 in range(0, q, block_rows):
        qb = tiles.prepare(queries[r0 : r0 + block_rows])
        values, indices = cand_values[r0 : r0 + block_rows], cand_indices[r0 : r0 + block_rows]
        for c0, rb in ref_blocks:
            tile = tiles.tile(qb, rb)
            if merge is not None:
                values, indices = values.contiguous(), indices.contiguous()
                merge(tile, values, indices, c0, r0, self_offset)
                continue
            cols = torch.arange(c0, c0 + tile.shape[1], device=queries.device)
            if self_offset is not None:
                own = torch.arange(r0, r0 + tile.shape[0], device=queries.device) + self_offset
                tile[own[:, None] == cols[None, :]] = float("inf")
                cols_for_rows = cols[None, :].expand(tile.shape[0], -1)
                cols_for_rows = torch.where(own[:, None] == cols[None, :], -1, cols_for_rows)
                values, indices = _merge_topk(values, indices, tile, cols_for_rows, keep)
            else:
                values, indices = _merge_topk(values, indices, tile, cols[None, :], keep)
        all_values.append(values)
        all_indices.append(indices)
        all_norms.append(qb[1])
    cand_values, cand_indices = torch.cat(all_values), torch.cat(all_indices)
    return _finish_topk(
        queries,
        reference,
        cand_values,
        cand_indices,
        k,
        torch.cat(all_norms),
        max_ref_norm,
        tiles.factor,
        self_offset,
    )


def knn_sq_distances_self(
    features: torch.Tensor, k: int, *, block: int = DEFAULT_BLOCK_ROWS
) -> tuple[torch.Tensor, torch.Tensor]:
    """k nearest neighbours of every row within its own set, excluding the row itself, exact.

    features float32 [n, d] -> (squared distances float64 [n, k] ascending, indices int64 [n, k]).
    The distance matrix is symmetric: only tiles (I, J) with J >= I are computed, each feeding the
    candidates of both row blocks.
    """
    n, dim = features.shape
    tiles = _CentredTiles(_center_of(features), dim)
    keep = k + EXTRA_CANDIDATES
    starts = list(range(0, n, block))
    prepared = [tiles.prepare(features[s : s + block]) for s in starts]
    values = [torch.full((p[0].shape[0], 0), float("inf"), device=features.device) for p in prepared]
    indices = [
        torch.full((p[0].shape[0], 0), -1, dtype=torch.int64, device=features.device) for p in prepared
    ]
    for bi, si in enumerate(starts):
        for bj in range(bi, len(starts)):
            sj = starts[bj]
            tile = tiles.tile(prepared[bi], prepared[bj])
            cols_j = torch.arange(sj, sj + tile.shape[1], device=features.device)
            if bi == bj:
                tile.fill_diagonal_(float("inf"))
                diag_cols = cols_j[None, :].expand(tile.shape[0], -1).clone()
                diag_cols.fill_diagonal_(-1)
                values[bi], indices[bi] = _merge_topk(values[bi], indices[bi], tile, diag_cols, keep)
                continue
            cols_i = torch.arange(si, si + tile.shape[0], device=features.device)
            values[bi], indices[bi] = _merge_topk(values[bi], indices[bi], tile, cols_j[None, :], keep)
            values[bj], indices[bj] = _merge_topk(values[bj], indices[bj], tile.T, cols_i[None, :], keep)
    norms = torch.cat([p[1] for p in prepared])
    return _finish_topk(
        features,
        features,
        torch.cat(values),
        torch.cat(indices),
        k,
        norms,
        float(norms.max()),
        tiles.factor,
        0,
    )


def ball_membership(
    centers: torch.Tensor,
    center_radii_sq: torch.Tensor,
    points: torch.Tensor,
    point_radii_sq: torch.Tensor,
    *,
    center: torch.Tensor | None = None,
    block_rows: int = DEFAULT_BLOCK_ROWS,
    block_cols: int = DEFAULT_BLOCK_COLS,
    products: TileProducts | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One exact pass over all (center i, point j) pairs deciding d_ij^2 <= r_i^2 and d_ij^2 <= s_j^2.

    centers float32 [n, d] with squared radii float64 [n]; points float32 [m, d] with squared radii
    float64 [m] -> (
      points_in_balls int64 [m]: number of center balls containing point j (density numerator),
      centers_reached bool [n]: some point lies in center i's ball (coverage),
      centers_in_point_balls bool [n]: center i lies in some point's ball (recall)
    ).
    """
    dim = centers.shape[1]
    if center is None:
        center = _center_of(centers, points)
    tiles = _CentredTiles(center, dim, products)
    device = centers.device
    points_in_balls = torch.zeros(points.shape[0], dtype=torch.int64, device=device)
    centers_reached = torch.zeros(centers.shape[0], dtype=torch.bool, device=device)
    centers_in_point_balls = torch.zeros(centers.shape[0], dtype=torch.bool, device=device)
    point_blocks = [
        (c0, tiles.prepare(points[c0 : c0 + block_cols])) for c0 in range(0, points.shape[0], block_cols)
    ]
    for r0 in range(0, centers.shape[0], block_rows):
        cb = tiles.prepare(centers[r0 : r0 + block_rows])
        r_sq = center_radii_sq[r0 : r0 + cb[0].shape[0], None]
        for c0, pb in point_blocks:
            tile = tiles.tile(cb, pb).double()
            bound = tiles.bound(cb[1], pb[1])
            s_sq = point_radii_sq[None, c0 : c0 + pb[0].shape[0]]
            in_center = tile + bound <= r_sq
            in_point = tile + bound <= s_sq
            unsure = ((tile - bound <= r_sq) & ~in_center) | ((tile - bound <= s_sq) & ~in_point)
            ii, jj = torch.nonzero(unsure, as_tuple=True)
            if ii.numel():
                exact = exact_sq_distances(centers, ii + r0, points, jj + c0)
                in_center[ii, jj] = exact <= r_sq[ii, 0]
                in_point[ii, jj] = exact <= s_sq[0, jj]
            points_in_balls[c0 : c0 + pb[0].shape[0]] += in_center.sum(0)
            centers_reached[r0 : r0 + cb[0].shape[0]] |= in_center.any(1)
            centers_in_point_balls[r0 : r0 + cb[0].shape[0]] |= in_point.any(1)
    return points_in_balls, centers_reached, centers_in_point_balls
