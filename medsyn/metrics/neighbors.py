"""Nearest neighbours in feature space (distance to closest record, DCR) and the k-NN scan backends.

    d, i = nearest_neighbors(queries, reference)     # float64 [q] Euclidean distances, int64 [q] indices

Near-duplicates are exactly the memorisation case DCR looks for, and a plain float32
``||a||^2 + ||b||^2 - 2ab`` loses them (about 30% relative error at a true distance of 0.064 with feature
norms around 60). The scans here keep a few float32 candidates per query, recompute them exactly and certify
the answer (see ``medsyn.kernels.knn_torch``): distances are the exact distances of the float32 features
(squared distance rounded once to float64, then the square root), ties go to the smaller reference index.

Any finite scale: the float32 tiles would overflow (squared distances of features near 1e20) or underflow
(near 1e-20) outside a moderate range, so ``float32_scaled_features`` first multiplies all the sets of one call
by a common power of two that puts the largest |x| just below ``2^tile_exponent_limit(d)`` (only when it is
outside [2^-30, that limit]). Scaling by a power of two is exact, distances scale by the same power and ratios
of distances (PRDC) do not change, so results are those of the unscaled float32 values; ``nearest_neighbors``
returns the distances scaled back. Float64 inputs beyond float32's range (1e39) are scaled before their one
rounding to float32. A float32 set whose dynamic range (largest / smallest nonzero |x|) exceeds what float32
can hold at one scale (about 2^180) cannot be scaled exactly and is refused with a ValueError.

Backends (``backend=``, chosen by ``medsyn.kernels.dispatch``): "cpp" (``medsyn._kernels``, OpenMP), "cuda"
(``medsyn._kernels_cuda`` tile kernels; CUDA tensors), "torch" (pure torch, any device), "auto" (cuda for CUDA
tensors when built, cpp for CPU tensors, torch as the fallback).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from medsyn.kernels import knn_torch
from medsyn.kernels.dispatch import (
    BACKENDS,
    BackendUnavailableError,
    cpu_kernels,
    cuda_kernels,
    resolve_backend,
)
from medsyn.kernels.gemm_screen import nearest_sq_screened
from medsyn.metrics.validation import as_feature_matrix, check_same_dim

__all__ = ["BACKENDS", "SCREEN_CHOICES", "SCREEN_MIN_DIM", "float32_scaled_features", "knn_backend", "nearest_neighbors", "tile_exponent_limit",
           "times_power_of_two"]

SCREEN_CHOICES = ("auto", "on", "off")

SCREEN_MIN_DIM = 4096
"""Feature dimension from which ``nearest_neighbors(screen="auto")`` uses the float64 GEMM screen on the CPU
(benchmarks/bench_knn.py: pixel space is far faster screened; 1,280-d features are not slower either way)."""

# Below 2^-30 a set is scaled up: its squared distances would approach float32's underflow and the
# absolute term of the tile rounding bound, making every pair "unsure" (exact but slow).
_SMALLEST_UNSCALED_EXPONENT = -30


def tile_exponent_limit(dim: int) -> int:
    """T(d): with every |x| < 2^T the float32 tiles cannot overflow.

    Centred values are < 2^(T+1), centred squared norms < d 2^(2T+2), a tile value na + nb + 2|a.b| < 2^(2T+4) d;
    T = (120 - ceil(log2 d)) // 2 keeps that below 2^124 (float32 max ~ 2^128). d = 2048: T = 54.
    """
    return (120 - max(int(dim - 1).bit_length(), 0)) // 2


def times_power_of_two(values: torch.Tensor, exponent: int) -> torch.Tensor:
    """values * 2^exponent, in two exact steps (float64 inputs may need |exponent| > 1023, beyond 2.0**e)."""
    half = exponent // 2
    return values * 2.0**half * 2.0 ** (exponent - half)


def float32_scaled_features(
    named: Sequence[tuple[torch.Tensor, str]],
) -> tuple[list[torch.Tensor], int]:
    """Validated float32/float64 feature matrices [*, d] -> (contiguous float32 matrices, exponent e).

    Every matrix is multiplied by the same 2^e (e = 0 when the largest |x| already lies in
    [2^-30, 2^T(d))), so that squared distances of the result fit float32 tiles; distances of the result are
    2^e times those of the inputs (after their one rounding to float32 for float64 inputs). Raises ValueError
    naming the arguments when a float32 input would lose bits to the scaling (dynamic range beyond float32).
    """
    dim = named[0][0].shape[1]
    peak = max(max(-float(low), float(high)) for low, high in (torch.aminmax(t) for t, _ in named))  # no |x| copy
    limit = tile_exponent_limit(dim)
    if peak == 0.0:
        exponent = 0
    else:
        _, peak_exponent = math.frexp(peak)  # peak = m 2^E, m in [0.5, 1)
        exponent = 0 if _SMALLEST_UNSCALED_EXPONENT <= peak_exponent <= limit else limit - peak_exponent
    if exponent == 0:
        return [t.to(torch.float32).contiguous() for t, _ in named], 0
    # in float64: exact for every float32 value (2^e itself may not be a float32)
    scaled = [times_power_of_two(t.double(), exponent).to(torch.float32).contiguous() for t, _ in named]
    for (original, name), result in zip(named, scaled):
        if original.dtype == torch.float32 and not torch.equal(
            times_power_of_two(result.double(), -exponent), original.double()
        ):
            names = " and ".join(n for _, n in named)
            small = min(float(t[t != 0].abs().min()) for t, _ in named if bool((t != 0).any()))
            raise ValueError(
                f"{name}: {names} have |values| from {small:.4g} to {peak:.4g}, a range float32 cannot hold at one "
                f"common scale (the squared distances need scaling by 2^{exponent}, which would round the smallest "
                "values); drop or rescale the tiny entries"
            )
    return scaled, exponent


def _cpp_backend(module: Any) -> SimpleNamespace:
    """Adapter: torch tensors in/out around the numpy-buffer kernels of medsyn._kernels."""

    def as_numpy(x: torch.Tensor) -> np.ndarray:
        return x.detach().to("cpu", torch.float32).contiguous().numpy()

    def knn_sq_distances(queries, reference, k, *, self_offset=None, **blocks):
        values, indices = module.knn_sq_distances(
            as_numpy(queries),
            as_numpy(reference),
            int(k),
            None if self_offset is None else int(self_offset),
            int(blocks.get("block_rows", 0) or 0),
            int(blocks.get("block_cols", 0) or 0),
        )
        return torch.from_numpy(values), torch.from_numpy(indices)

    def exact_sq_pairs(a, a_index, b, b_index):
        values = module.exact_sq_distance_pairs(
            as_numpy(a), a_index.to("cpu", torch.int64).contiguous().numpy(),
            as_numpy(b), b_index.to("cpu", torch.int64).contiguous().numpy())
        return torch.from_numpy(values)

    def knn_sq_distances_self(features, k, *, block=None):
        values, indices = module.knn_sq_distances_self(as_numpy(features), int(k), int(block or 0))
        return torch.from_numpy(values), torch.from_numpy(indices)

    def ball_membership(centers, center_radii_sq, points, point_radii_sq, **blocks):
        counts, reached, inside = module.ball_membership(
            as_numpy(centers),
            center_radii_sq.detach().cpu().double().contiguous().numpy(),
            as_numpy(points),
            point_radii_sq.detach().cpu().double().contiguous().numpy(),
            int(blocks.get("block_rows", 0) or 0),
            int(blocks.get("block_cols", 0) or 0),
        )
        return torch.from_numpy(counts), torch.from_numpy(reached).bool(), torch.from_numpy(inside).bool()

    return SimpleNamespace(
        name="cpp",
        knn_sq_distances=knn_sq_distances,
        knn_sq_distances_self=knn_sq_distances_self,
        ball_membership=ball_membership,
        exact_sq_pairs=exact_sq_pairs,
    )


def _torch_backend() -> SimpleNamespace:
    def knn_sq_distances_self(features, k, *, block=None):
        return knn_torch.knn_sq_distances_self(features, k, block=block or knn_torch.DEFAULT_BLOCK_ROWS)

    def knn_sq_distances(queries, reference, k, *, self_offset=None, block_rows=None, block_cols=None):
        return knn_torch.knn_sq_distances(
            queries,
            reference,
            k,
            self_offset=self_offset,
            block_rows=block_rows or knn_torch.DEFAULT_BLOCK_ROWS,
            block_cols=block_cols or knn_torch.DEFAULT_BLOCK_COLS,
        )

    def ball_membership(
        centers, center_radii_sq, points, point_radii_sq, *, block_rows=None, block_cols=None
    ):
        return knn_torch.ball_membership(
            centers,
            center_radii_sq,
            points,
            point_radii_sq,
            block_rows=block_rows or knn_torch.DEFAULT_BLOCK_ROWS,
            block_cols=block_cols or knn_torch.DEFAULT_BLOCK_COLS,
        )

    return SimpleNamespace(
        name="torch",
        knn_sq_distances=knn_sq_distances,
        knn_sq_distances_self=knn_sq_distances_self,
        ball_membership=ball_membership,
    )


def knn_backend(backend: str, device: torch.device) -> SimpleNamespace:
    """The scan functions (knn_sq_distances, knn_sq_distances_self, ball_membership) of one backend.

    Backend choice follows ``medsyn.kernels.dispatch.resolve_backend`` (ValueError for an unknown name,
    BackendUnavailableError when a requested compiled module is missing or lacks the k-NN kernels).
    """
    resolved = resolve_backend(backend, device)
    if resolved == "torch":
        return _torch_backend()
    if resolved == "cpp":
        module = cpu_kernels()
        if not hasattr(module, "knn_sq_distances") or not hasattr(module, "exact_sq_distance_pairs"):
            raise BackendUnavailableError(
                "medsyn._kernels was built without the k-NN kernels (stale build); rebuild with `make install`"
            )
        return _cpp_backend(module)
    module = cuda_kernels()
    if not hasattr(module, "sq_distance_tile"):
        raise BackendUnavailableError(
            "medsyn._kernels_cuda was built without the k-NN kernels (stale build); rebuild with `make install`"
        )
    return _cuda_backend(module)


_NO_SELF = -(2**62)  # kNoSelf in csrc/cpu/neighbors.h


def _cuda_backend(module: Any) -> SimpleNamespace:
    """The torch twin's scans with the tile products and the top-k merge done by csrc/cuda/knn.cu kernels.

    Centring, norms and the exact finish (float64 recompute, certification) run as torch ops on the device.
    """

    def stream() -> int:
        return torch.cuda.current_stream().cuda_stream

    def products(ca, na, cb, nb):
        ca, cb = ca.contiguous(), cb.contiguous()
        na32, nb32 = na.float().contiguous(), nb.float().contiguous()
        out = torch.empty(ca.shape[0], cb.shape[0], dtype=torch.float32, device=ca.device)
        module.sq_distance_tile(
            ca.data_ptr(),
            ca.shape[0],
            cb.data_ptr(),
            cb.shape[0],
            ca.shape[1],
            na32.data_ptr(),
            nb32.data_ptr(),
            out.data_ptr(),
            stream(),
        )
        return out

    def merge(tile, values, indices, col_offset, row_offset, self_offset):
        tile = tile.contiguous()
        module.topk_merge(
            tile.data_ptr(),
            tile.shape[0],
            tile.shape[1],
            tile.stride(0),
            col_offset,
            row_offset,
            _NO_SELF if self_offset is None else self_offset,
            values.data_ptr(),
            indices.data_ptr(),
            values.shape[1],
            stream(),
        )

    return device_tile_backend("cuda", products, merge)


def device_tile_backend(name: str, products: Any, merge: Any) -> SimpleNamespace:
    """Scan functions built from device tile kernels (``products``, in-place ``merge``) + the torch twin."""

    def knn_sq_distances(queries, reference, k, *, self_offset=None, block_rows=None, block_cols=None):
        return knn_torch.knn_sq_distances(
            queries,
            reference,
            k,
            self_offset=self_offset,
            products=products,
            merge=merge,
            block_rows=block_rows or 4096,
            block_cols=block_cols or 4096,
        )

    def knn_sq_distances_self(features, k, *, block=None):
        return knn_sq_distances(features, features, k, self_offset=0, block_rows=block, block_cols=block)

    def ball_membership(
        centers, center_radii_sq, points, point_radii_sq, *, block_rows=None, block_cols=None
    ):
        return knn_torch.ball_membership(
            centers,
            center_radii_sq.to(centers.device),
            points,
            point_radii_sq.to(centers.device),
            products=products,
            block_rows=block_rows or 4096,
            block_cols=block_cols or 4096,
        )

    return SimpleNamespace(
        name=name,
        knn_sq_distances=knn_sq_distances,
        knn_sq_distances_self=knn_sq_distances_self,
        ball_membership=ball_membership,
    )


def nearest_neighbors(
    queries: Any,
    reference: Any,
    *,
    exclude_self: bool = False,
    backend: str = "auto",
    block_rows: int | None = None,
    block_cols: int | None = None,
    screen: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Euclidean nearest reference row of every query, exact.

    queries [q, d], reference [n, d] (torch or numpy, any real dtype; converted once to float32, scaled by a
    common power of two when their magnitude needs it, see the module docstring) ->
    (distances float64 [q], indices int64 [q]) on the CPU (the device of the inputs for CUDA).
    ``exclude_self=True`` requires queries and reference to be the same set (same n) and skips
    query i == reference i (nearest *other* record). Ties -> smallest index.
    ``screen``: "on" finds the nearest row by the float64 GEMM screen of ``medsyn.kernels.gemm_screen``
    (exact, the same values and indices: its survivors are recomputed exactly), "off" by the float32 tile scan
    of ``backend``, "auto" screens CPU inputs of at least ``SCREEN_MIN_DIM`` features (pixel space), where the
    float32 tiles' rounding bound sends most pairs to the exact recompute. The backend and block sizes
    apply to the tile scan only.
    """
    if screen not in SCREEN_CHOICES:
        raise ValueError(f"screen must be one of {list(SCREEN_CHOICES)}, got {screen!r}")
    queries_t = as_feature_matrix(queries, "queries", dtype=None)
    reference_t = as_feature_matrix(reference, "reference", min_rows=2 if exclude_self else 1, dtype=None)
    check_same_dim(queries_t, "queries", reference_t, "reference")
    if exclude_self and queries_t.shape[0] != reference_t.shape[0]:
        raise ValueError(
            f"exclude_self=True needs queries and reference to be the same set, got {queries_t.shape[0]} "
            f"and {reference_t.shape[0]} rows"
        )
    if queries_t.device != reference_t.device:
        raise ValueError(
            f"queries and reference must be on the same device, got {queries_t.device} and {reference_t.device}"
        )
    (queries_t, reference_t), exponent = float32_scaled_features([(queries_t, "queries"), (reference_t, "reference")])
    scan = knn_backend(backend, queries_t.device)
    on_cpu = queries_t.device.type == "cpu"
    if screen == "on" or (screen == "auto" and on_cpu and queries_t.shape[1] >= SCREEN_MIN_DIM):
        sq, idx = nearest_sq_screened(queries_t, reference_t, exclude_self=exclude_self,
                                      exact_pairs=getattr(scan, "exact_sq_pairs", knn_torch.exact_sq_distances))
        return times_power_of_two(sq.sqrt(), -exponent), idx
    sq, idx = scan.knn_sq_distances(
        queries_t,
        reference_t,
        1,
        self_offset=0 if exclude_self else None,
        block_rows=block_rows,
        block_cols=block_cols,
    )
    return times_power_of_two(sq[:, 0].sqrt(), -exponent), idx[:, 0]  # power of two: exact in float64
