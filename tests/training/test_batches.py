"""Batch orders: Poisson sampling rate, determinism, exact resume, and DDP sharding."""

import pytest
import torch

from medsyn.training.batches import PoissonBatches, ShuffledBatches, shard_batch


def test_poisson_batches_have_the_requested_rate_and_sorted_unique_indices():
    batches = PoissonBatches(num_items=200, sample_rate=0.1, seed=3)
    sizes = []
    for _ in range(300):
        index = batches.next()
        assert index.dtype == torch.int64
        assert torch.equal(index, torch.unique(index))  # sorted, no duplicates
        assert len(index) == 0 or (index.min() >= 0 and index.max() < 200)
        sizes.append(len(index))
    mean = sum(sizes) / len(sizes)
    # Binomial(200, 0.1): mean 20, std of the mean over 300 batches = sqrt(18/300) ~ 0.245
    assert abs(mean - 20) < 1.5
    assert len(set(sizes)) > 5  # sizes vary, unlike fixed batches


def test_poisson_batches_resume_exactly_and_refuse_a_different_order():
    uninterrupted = PoissonBatches(50, 0.2, seed=1)
    expected = [uninterrupted.next() for _ in range(10)]
    first = PoissonBatches(50, 0.2, seed=1)
    seen = [first.next() for _ in range(4)]
    resumed = PoissonBatches(50, 0.2, seed=1)
    resumed.load_state_dict(first.state_dict())
    seen += [resumed.next() for _ in range(6)]
    assert all(torch.equal(a, b) for a, b in zip(expected, seen))
    with pytest.raises(ValueError, match="sample_rate"):
        PoissonBatches(50, 0.3, seed=1).load_state_dict(first.state_dict())
    with pytest.raises(ValueError, match="poisson"):
        ShuffledBatches(50, 10, seed=1).load_state_dict(first.state_dict())
    with pytest.raises(ValueError, match="shuffled"):
        PoissonBatches(50, 0.2, seed=1).load_state_dict(ShuffledBatches(50, 10, seed=1).state_dict())


def test_different_seeds_give_different_poisson_batches():
    a, b = PoissonBatches(100, 0.5, seed=0), PoissonBatches(100, 0.5, seed=1)
    assert not torch.equal(a.next(), b.next())


@pytest.mark.parametrize("rate", [0.0, -0.1, 1.5])
def test_poisson_rate_outside_unit_interval_is_rejected(rate):
    with pytest.raises(ValueError, match="sample_rate"):
        PoissonBatches(10, rate, seed=0)


def test_shards_partition_the_global_batch():
    batch = torch.tensor([7, 3, 9, 1, 4, 8])
    shards = [shard_batch(batch, rank, 3) for rank in range(3)]
    assert sorted(torch.cat(shards).tolist()) == sorted(batch.tolist())
    assert [len(shard) for shard in shards] == [2, 2, 2]
    with pytest.raises(ValueError, match="rank"):
        shard_batch(batch, 3, 3)
