"""Sharded scans: merges of partial results, and 2 gloo processes on 127.0.0.1 equal to one process."""

from __future__ import annotations

import itertools
import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from medsyn.kernels import knn_torch
from medsyn.metrics import sharded
from medsyn.metrics.neighbors import nearest_neighbors
from medsyn.metrics.prdc import prdc
from medsyn.metrics.ssim import ssim_max


def features(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    real = np.concatenate([rng.normal(size=(90, 12)), rng.integers(0, 2, size=(30, 12))]).astype(np.float32)
    synthetic = np.concatenate([real[50:80], rng.normal(size=(71, 12)) * 1.1]).astype(np.float32)
    return real, synthetic


def images(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    real = rng.random((9, 1, 16, 16)).astype(np.float32)
    synthetic = np.concatenate([real[[7, 2]], rng.random((3, 1, 16, 16))]).astype(np.float32)
    return synthetic, real


def test_shard_range_covers_every_row_once():
    for n, world_size in ((10, 3), (2, 2), (7, 1), (3, 4)):
        ranges = [sharded.shard_range(n, r, world_size) for r in range(world_size)]
        assert ranges[0][0] == 0 and ranges[-1][1] == n
        assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
        sizes = [b - a for a, b in ranges]
        assert max(sizes) - min(sizes) <= 1


def test_merge_best_ties_go_to_the_smallest_index():
    values = [
        torch.tensor([0.5, 0.9, 0.1], dtype=torch.float64),
        torch.tensor([0.5, 0.2, 0.3], dtype=torch.float64),
    ]
    indices = [torch.tensor([4, 1, 0]), torch.tensor([2, 7, 9])]
    v, i = sharded.merge_best(values, indices, largest=True)
    assert v.tolist() == [0.5, 0.9, 0.3] and i.tolist() == [2, 1, 9]
    v, i = sharded.merge_best(values, indices, largest=False)
    assert v.tolist() == [0.5, 0.2, 0.1] and i.tolist() == [2, 7, 0]


def test_merging_shards_in_one_process_equals_the_full_scan():
    real, synthetic = features()
    rt = torch.from_numpy(real)
    for world_size in (2, 3):
        parts_v, parts_i = [], []
        for rank in range(world_size):
            start, stop = sharded.shard_range(len(real), rank, world_size)
            v, i = knn_torch.knn_sq_distances(rt, rt[start:stop], 3, self_offset=-start)
            parts_v.append(v)
            parts_i.append(i + start)
        merged_v, merged_i = sharded.merge_topk(parts_v, parts_i, 3)
        full_v, full_i = knn_torch.knn_sq_distances_self(rt, 3)
        assert torch.equal(merged_v, full_v) and torch.equal(merged_i, full_i)
    # world size 1 (no process group): the helpers equal the public functions
    assert sharded.distributed_prdc(real, synthetic, k=3) == prdc(real, synthetic, k=3)
    d, i = sharded.distributed_nearest_neighbors(synthetic, real)
    d1, i1 = nearest_neighbors(synthetic, real)
    assert torch.equal(d, d1) and torch.equal(i, i1)


def test_one_process_helpers_take_the_ball_convention_and_any_scale():
    real, synthetic = features()  # integer rows: exact ties, so open and closed balls differ
    for ball in ("closed", "open"):
        assert sharded.distributed_prdc(real, synthetic, k=3, ball=ball) == prdc(real, synthetic, k=3, ball=ball)
    assert sharded.distributed_prdc(real, synthetic, k=3, ball="open") != prdc(real, synthetic, k=3)
    scale = np.float32(2.0**100)  # float32 tiles of these squared distances would overflow without scaling
    assert sharded.distributed_prdc(real * scale, synthetic * scale, k=3) == prdc(real, synthetic, k=3)
    d, i = sharded.distributed_nearest_neighbors(synthetic * scale, real * scale)
    d1, i1 = nearest_neighbors(synthetic, real)
    assert torch.equal(i, i1) and torch.equal(d, d1 * 2.0**100)
    with pytest.raises(ValueError, match="ball must be one of"):
        sharded.distributed_prdc(real, synthetic, k=3, ball="closed ")


def test_too_few_rows_per_rank_is_a_value_error():
    rt = torch.zeros(3, 2)
    with pytest.raises(ValueError, match="k=3 needs at least"):
        sharded.distributed_knn_sq_distances(rt, rt, 3, queries_are_reference=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_rank(rank: int, world_size: int, port: int, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size)
    try:
        real, synthetic = features()
        result = {"prdc": sharded.distributed_prdc(real, synthetic, k=3)}
        d, i = sharded.distributed_nearest_neighbors(synthetic, real)
        result["nn"] = (d.numpy(), i.numpy())
        d, i = sharded.distributed_nearest_neighbors(real, real, exclude_self=True, backend="torch")
        result["nn_self"] = (d.numpy(), i.numpy())
        syn_images, real_images = images()
        v, i = sharded.distributed_ssim_max(syn_images, real_images)
        result["ssim"] = (v.numpy(), i.numpy())
        torch.save(result, f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_two_gloo_ranks_equal_one_process(tmp_path):
    mp.spawn(run_rank, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)
    real, synthetic = features()
    expected_prdc = prdc(real, synthetic, k=3)
    d, i = nearest_neighbors(synthetic, real)
    ds, is_ = nearest_neighbors(real, real, exclude_self=True)
    for rank in (0, 1):
        result = torch.load(tmp_path / f"rank{rank}.pt", weights_only=False)
        assert result["prdc"] == expected_prdc
        np.testing.assert_array_equal(result["nn"][0], d.numpy())
        np.testing.assert_array_equal(result["nn"][1], i.numpy())
        np.testing.assert_array_equal(result["nn_self"][0], ds.numpy())
        np.testing.assert_array_equal(result["nn_self"][1], is_.numpy())
        syn_images, real_images = images()
        full = ssim_max(syn_images, real_images)
        np.testing.assert_array_equal(result["ssim"][0], full.values.double().numpy())
        np.testing.assert_array_equal(result["ssim"][1], full.indices.numpy())
        assert result["ssim"][1][:2].tolist() == [7, 2]  # the planted copies are found in either shard
