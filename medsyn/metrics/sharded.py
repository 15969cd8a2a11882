"""Scan a shard of the reference set, merge partial results, and run scans across ``torch.distributed`` ranks.

Every scan in medsyn is a reduction over reference rows (max SSIM, nearest neighbour, k nearest distances,
ball counts), so it splits exactly: each rank scans a contiguous shard of the reference rows, shifts its
indices by the shard's start, and the partial results are merged with the same tie rule as one process
(best value, then smallest global index). Because the k-NN values are exact (once-rounded) distances, the
merged results are bitwise those of a single process.

    from medsyn.metrics.sharded import distributed_prdc, distributed_nearest_neighbors, distributed_ssim_max
    # in every rank of a process group (torchrun, gloo on CPU / nccl on GPU), with the full inputs:
    m = distributed_prdc(real_features, synthetic_features, k=3)

Without an initialised process group the helpers run as one process (world size 1). The scans live beside
the metrics they shard (layer L3): the kernels below them know nothing of metrics.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.distributed as dist

from medsyn.metrics.neighbors import float32_scaled_features, knn_backend, times_power_of_two
from medsyn.metrics.prdc import DEFAULT_K, membership_radii_sq, prdc_from_radii, validate_prdc_inputs
from medsyn.metrics.ssim import ssim_max
from medsyn.metrics.validation import as_feature_matrix, check_same_dim

__all__ = [
    "all_gather_best",
    "all_gather_topk",
    "distributed_knn_sq_distances",
    "distributed_nearest_neighbors",
    "distributed_prdc",
    "distributed_ssim_max",
    "merge_best",
    "merge_topk",
    "shard_range",
    "world",
]


def shard_range(n: int, rank: int, world_size: int) -> tuple[int, int]:
    """Contiguous, balanced shard [start, stop) of n rows for ``rank`` of ``world_size`` (sizes differ by <= 1)."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
    base, extra = divmod(n, world_size)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


def merge_best(
    values: Sequence[torch.Tensor], indices: Sequence[torch.Tensor], *, largest: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per query, the best of several partial results: values [q] each, global indices [q] each.

    largest=True: max (e.g. SSIM), False: min (e.g. distance). Ties -> smallest index, as in one scan.
    """
    v = torch.stack(list(values), dim=1)
    i = torch.stack(list(indices), dim=1)
    best = v.max(dim=1, keepdim=True).values if largest else v.min(dim=1, keepdim=True).values
    tied = v == best
    big = torch.iinfo(torch.int64).max
    chosen = torch.where(tied, i, torch.full_like(i, big)).min(dim=1).values
    return best[:, 0], chosen


def merge_topk(
    values: Sequence[torch.Tensor], indices: Sequence[torch.Tensor], k: int, *, largest: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per query, the k best of several partial top lists: values/indices [q, k_s] each -> [q, k].

    Sorted best first; ties -> smallest index. Padding entries (index -1) sort last.
    """
    v = torch.cat(list(values), dim=1)
    i = torch.cat(list(indices), dim=1)
    padding = i < 0
    key = -v if largest else v.clone()
    key[padding] = float("inf")
    index_key = torch.where(padding, torch.iinfo(torch.int64).max, i)
    by_index = torch.argsort(index_key, dim=1, stable=True)
    key, v, i = (torch.gather(t, 1, by_index) for t in (key, v, i))
    by_value = torch.argsort(key, dim=1, stable=True)[:, :k]
    return torch.gather(v, 1, by_value), torch.gather(i, 1, by_value)


def world(group: Any = None) -> tuple[int, int]:
    """(rank, world_size) of the default (or given) process group; (0, 1) without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(group), dist.get_world_size(group)
    return 0, 1


def _all_gather(tensor: torch.Tensor, group: Any) -> list[torch.Tensor]:
    _, size = world(group)
    if size == 1:
        return [tensor]
    parts = [torch.empty_like(tensor) for _ in range(size)]
    dist.all_gather(parts, tensor.contiguous(), group=group)
    return parts


def _all_reduce_sum(tensor: torch.Tensor, group: Any) -> torch.Tensor:
    if world(group)[1] > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM, group=group)
    return tensor


def all_gather_best(
    values: torch.Tensor, indices: torch.Tensor, *, largest: bool, group: Any = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Merge per-rank partial (values [q], global indices [q]) into the global best on every rank."""
    return merge_best(_all_gather(values, group), _all_gather(indices, group), largest=largest)


def all_gather_topk(
    values: torch.Tensor, indices: torch.Tensor, k: int, *, largest: bool = False, group: Any = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Merge per-rank partial top lists ([q, k], global indices) into the global top k on every rank."""
    return merge_topk(_all_gather(values, group), _all_gather(indices, group), k, largest=largest)


def distributed_knn_sq_distances(
    queries: torch.Tensor,
    reference: torch.Tensor,
    k: int,
    *,
    queries_are_reference: bool = False,
    backend: str = "auto",
    group: Any = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact k nearest reference rows of every query, the reference sharded over the ranks.

    queries float32 [q, d], reference float32 [n, d] (the full sets, identical on every rank) ->
    (squared distances float64 [q, k], global indices int64 [q, k]) on every rank.
    ``queries_are_reference``: query i is reference row i and is excluded (k-NN radii). Every shard must
    hold at least k + 1 rows so that it can contribute its k best to every query.
    """
    rank, size = world(group)
    start, stop = shard_range(reference.shape[0], rank, size)
    smallest_shard = reference.shape[0] // size
    if smallest_shard < k + 1:
        raise ValueError(
            f"k={k} needs at least k + 1 = {k + 1} reference rows per rank; {reference.shape[0]} rows over {size} "
            f"ranks give {smallest_shard}"
        )
    scan = knn_backend(backend, queries.device)
    values, indices = scan.knn_sq_distances(
        queries, reference[start:stop], k, self_offset=-start if queries_are_reference else None
    )
    return all_gather_topk(values.to(queries.device), indices.to(queries.device) + start, k, group=group)


def distributed_nearest_neighbors(
    queries: Any, reference: Any, *, exclude_self: bool = False, backend: str = "auto", group: Any = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``medsyn.metrics.nearest_neighbors`` with the reference sharded over the ranks (same result)."""
    queries_t = as_feature_matrix(queries, "queries", dtype=None)
    reference_t = as_feature_matrix(reference, "reference", dtype=None)
    check_same_dim(queries_t, "queries", reference_t, "reference")
    if exclude_self and queries_t.shape[0] != reference_t.shape[0]:
        raise ValueError("exclude_self=True needs queries and reference to be the same set")
    # the full sets are identical on every rank, so every rank picks the same power-of-two scale
    (queries_t, reference_t), exponent = float32_scaled_features([(queries_t, "queries"), (reference_t, "reference")])
    sq, idx = distributed_knn_sq_distances(
        queries_t, reference_t, 1, queries_are_reference=exclude_self, backend=backend, group=group
    )
    return times_power_of_two(sq[:, 0].sqrt(), -exponent), idx[:, 0]


def distributed_prdc(
    real_features: Any,
    synthetic_features: Any,
    k: int = DEFAULT_K,
    *,
    backend: str = "auto",
    group: Any = None,
    ball: str = "closed",
) -> dict[str, float]:
    """``medsyn.metrics.prdc`` with both scans sharded over the ranks; every rank returns the same dict.

    Radii: each rank finds every point's k nearest neighbours within its shard, merged by all_gather.
    Membership: each rank tests its shard of real balls against all synthetic points; counts are summed.
    """
    membership_radii_sq(torch.zeros(1, dtype=torch.float64), ball)  # refuse a bad ``ball`` before any work
    real, synthetic = validate_prdc_inputs(real_features, synthetic_features, k)
    rank, size = world(group)
    real_radii = distributed_knn_sq_distances(
        real, real, k, queries_are_reference=True, backend=backend, group=group
    )
    synthetic_radii = distributed_knn_sq_distances(
        synthetic, synthetic, k, queries_are_reference=True, backend=backend, group=group
    )
    real_radii_sq = membership_radii_sq(real_radii[0][:, k - 1], ball)
    synthetic_radii_sq = membership_radii_sq(synthetic_radii[0][:, k - 1], ball)
    start, stop = shard_range(real.shape[0], rank, size)
    scan = knn_backend(backend, real.device)
    counts, reached_shard, inside_shard = scan.ball_membership(
        real[start:stop], real_radii_sq[start:stop].contiguous(), synthetic, synthetic_radii_sq.contiguous()
    )
    reached = torch.zeros(real.shape[0], dtype=torch.int64, device=real.device)
    inside = torch.zeros(real.shape[0], dtype=torch.int64, device=real.device)
    reached[start:stop] = reached_shard.to(real.device).long()
    inside[start:stop] = inside_shard.to(real.device).long()
    counts = _all_reduce_sum(counts.to(real.device).long(), group)
    reached, inside = _all_reduce_sum(reached, group), _all_reduce_sum(inside, group)
    return prdc_from_radii(counts, reached > 0, inside > 0, k)


def distributed_ssim_max(
    synthetic: Any, real: Any, *, group: Any = None, **ssim_kwargs: Any
) -> tuple[torch.Tensor, torch.Tensor]:
    """``medsyn.metrics.ssim_max`` with the real images sharded over the ranks -> (values [q], indices [q]).

    Each rank needs at least one real image. Extra keyword arguments go to ``ssim_max`` (window, data_range, ...).
    """
    rank, size = world(group)
    n_real = len(real)
    if n_real < size:
        raise ValueError(f"real has {n_real} images, fewer than the {size} ranks")
    start, stop = shard_range(n_real, rank, size)
    result = ssim_max(synthetic, real[start:stop], **ssim_kwargs)
    return all_gather_best(result.values.double(), result.indices.long() + start, largest=True, group=group)
