"""Nearest neighbour of every query row by a float64 GEMM screen and an exact recompute of the survivors.

The float32 tile scans of ``medsyn.kernels.knn_torch`` (and the compiled kernels that follow them) carry a
rounding bound of about ``2 d 2^-24`` times the squared norms. For pixel-space DCR (d = 3 x 256 x 256 =
196,608) that bound is wider than the gaps between candidates, so most pairs end up recomputed exactly and
the scan runs at a few GFLOP/s. This screen does the products in float64 instead, where the bound is about
``d 2^-53`` (2e-11 relative at d = 196,608), and hands only the pairs the bound cannot rule out to the exact
recompute:

* every float32 value is exact in float64 and so is the product of two of them (48 significant bits), so the
  only rounding is in the sums: for any summation order, ``|G^ - a.b| <= gamma(d) sum |a_i b_i| <=
  gamma(d) ||a|| ||b||`` and ``|n^ - ||a||^2| <= gamma(d) ||a||^2`` (gamma(n) = n u / (1 - n u), u = 2^-53);
  with the two additions of ``n^_a + n^_b - 2 G^`` the estimate D^ of a squared distance D satisfies
  ``|D^ - D| <= gamma(d + 2) (||a|| + ||b||)^2``; ``screen_bound_factor`` doubles gamma to cover the rounding
  of the bound itself;
* per query, U = min over the reference of (D^ + E) bounds the true minimum from above; every reference row
  with D^ - E <= U survives (the true nearest rows, ties included, always do), its squared distance is
  recomputed exactly (``exact_pairs``: ``knn_torch.exact_sq_distances`` or the compiled kernel's
  ``exact_sq_distance_pairs``, error-free transformations rounded once to float64, the function the tile scans
  use for their own recompute), and the smallest exact value wins, ties to the smaller reference index.

The answer is therefore the exact one of the float32 scans, bit for bit; only the time differs. Products are
accumulated over chunks of the feature dimension so the float64 copies stay small (``INNER_CHUNK`` columns),
and reference rows are taken in blocks, so memory is O(block_rows x block_cols) beyond the inputs.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from medsyn.kernels import knn_torch

__all__ = ["INNER_CHUNK", "ExactPairs", "nearest_sq_screened", "screen_bound_factor"]

ExactPairs = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
"""``exact_pairs(a, a_index, b, b_index)``: exact squared distances (rounded once to float64) of the row pairs
a[a_index[p]], b[b_index[p]] -> float64 [P] (``knn_torch.exact_sq_distances`` or a compiled twin)."""

_UNIT_ROUNDOFF = 2.0**-53

INNER_CHUNK = 16_384
"""Feature columns converted to float64 at a time (a 256-row block of them is 32 MiB)."""

_BLOCK_ROWS = 256
_BLOCK_COLS = 1024


def screen_bound_factor(dim: int) -> float:
    """c(d) with |D^ - D| <= c(d) (||a|| + ||b||)^2 for the float64 screen (module doc): 2 gamma(d + 2)."""
    n_u = (dim + 2) * _UNIT_ROUNDOFF
    return 2.0 * n_u / (1.0 - n_u)


def _row_dots(rows: torch.Tensor) -> torch.Tensor:
    """Squared norm of every row [r, d] -> [r], as batched BLAS dot products (faster than vecdot or mul-sum)."""
    return torch.bmm(rows.unsqueeze(1), rows.unsqueeze(2)).flatten()


def _float64_products(rows: torch.Tensor, cols: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(rows [r, d] . cols [c, d]^T, squared norms of rows [r], of cols [c]), all in float64, in one pass over
    the feature dimension taken INNER_CHUNK columns at a time (each chunk converted to float64 once)."""
    products = torch.zeros(rows.shape[0], cols.shape[0], dtype=torch.float64, device=rows.device)
    row_norms = torch.zeros(rows.shape[0], dtype=torch.float64, device=rows.device)
    col_norms = torch.zeros(cols.shape[0], dtype=torch.float64, device=rows.device)
    for start in range(0, rows.shape[1], INNER_CHUNK):
        stop = start + INNER_CHUNK
        row_chunk, col_chunk = rows[:, start:stop].double(), cols[:, start:stop].double()
        products.addmm_(row_chunk, col_chunk.T)
        row_norms += _row_dots(row_chunk)
        col_norms += _row_dots(col_chunk)
    return products, row_norms, col_norms


def nearest_sq_screened(
    queries: torch.Tensor,
    reference: torch.Tensor,
    *,
    exclude_self: bool = False,
    block_rows: int = _BLOCK_ROWS,
    block_cols: int = _BLOCK_COLS,
    exact_pairs: ExactPairs = knn_torch.exact_sq_distances,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact squared distance of every query to its nearest reference row, and that row's index.

    queries float32 [q, d], reference float32 [n, d] (finite, one device) -> (float64 [q], int64 [q]).
    ``exclude_self``: queries and reference are the same set and row i is not its own neighbour (n >= 2).
    Ties go to the smaller reference index; the values are those of the tile scans (``knn_torch.knn_sq_distances``).
    """
    if block_rows < 1 or block_cols < 1:
        raise ValueError(f"block_rows and block_cols must be positive, got {block_rows} and {block_cols}")
    factor = screen_bound_factor(queries.shape[1])
    distances = torch.empty(queries.shape[0], dtype=torch.float64, device=queries.device)
    indices = torch.empty(queries.shape[0], dtype=torch.int64, device=queries.device)
    for row_start in range(0, queries.shape[0], block_rows):
        rows = queries[row_start : row_start + block_rows]
        best, nearest = _screened_block(rows, row_start, reference, factor=factor, exclude_self=exclude_self, block_cols=block_cols,
                                        exact_pairs=exact_pairs)
        distances[row_start : row_start + rows.shape[0]] = best
        indices[row_start : row_start + rows.shape[0]] = nearest
    return distances, indices


def _screened_block(
    rows: torch.Tensor,
    row_start: int,
    reference: torch.Tensor,
    *,
    factor: float,
    exclude_self: bool,
    block_cols: int,
    exact_pairs: ExactPairs,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The screen and the exact recompute for one block of query rows."""
    upper = torch.full((rows.shape[0],), float("inf"), dtype=torch.float64, device=rows.device)
    kept_rows, kept_cols, kept_lower = [], [], []
    row_ids = torch.arange(rows.shape[0], device=rows.device)
    for col_start in range(0, reference.shape[0], block_cols):
        cols = reference[col_start : col_start + block_cols]
        col_ids = torch.arange(col_start, col_start + cols.shape[0], device=rows.device)
        products, row_norms, col_norms = _float64_products(rows, cols)
        estimate = (row_norms[:, None] + col_norms[None, :]) - 2.0 * products
        bound = factor * (row_norms.sqrt()[:, None] + col_norms.sqrt()[None, :]).square()
        lower, high = estimate - bound, estimate + bound
        if exclude_self:
            own = (row_ids + row_start)[:, None] == col_ids[None, :]
            lower = lower.masked_fill(own, float("inf"))
            high = high.masked_fill(own, float("inf"))
        upper = torch.minimum(upper, high.min(1).values)
        survivors = lower <= upper[:, None]
        pair_rows, pair_cols = survivors.nonzero(as_tuple=True)
        kept_rows.append(pair_rows)
        kept_cols.append(pair_cols + col_start)
        kept_lower.append(lower[pair_rows, pair_cols])
    pair_rows, pair_cols, pair_lower = torch.cat(kept_rows), torch.cat(kept_cols), torch.cat(kept_lower)
    final = pair_lower <= upper[pair_rows]  # survivors of the final bound of their row
    pair_rows, pair_cols = pair_rows[final], pair_cols[final]
    exact = exact_pairs(rows, pair_rows, reference, pair_cols)
    # the smallest exact value of each row, ties to the smallest column: sort by (row, value, column)
    order = torch.argsort(pair_cols, stable=True)
    order = order[torch.argsort(exact[order], stable=True)]
    order = order[torch.argsort(pair_rows[order], stable=True)]
    pair_rows, pair_cols, exact = pair_rows[order], pair_cols[order], exact[order]
    first = torch.ones_like(pair_rows, dtype=torch.bool)
    first[1:] = pair_rows[1:] != pair_rows[:-1]
    best = torch.empty(rows.shape[0], dtype=torch.float64, device=rows.device)
    nearest = torch.empty(rows.shape[0], dtype=torch.int64, device=rows.device)
    best[pair_rows[first]] = exact[first]
    nearest[pair_rows[first]] = pair_cols[first]
    return best, nearest
