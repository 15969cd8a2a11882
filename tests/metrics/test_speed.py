"""sampling_speed: warm-up excluded, fixed count c per call, finite positive rate, bad input."""

import json
import math

import pytest
import torch

from medsyn.metrics.speed import sampling_speed


class CountingSampler:
    def __init__(self):
        self.calls = []

    def __call__(self, labels):
        self.calls.append(labels.clone())
        # a known, small cost: a few matrix products per sample
        x = torch.ones(16, 16)
        for _ in range(len(labels)):
            x = x @ torch.eye(16)
        return torch.zeros(len(labels), 1, 4, 4)


def test_warmup_and_repeats_call_counts_and_rate():
    sampler = CountingSampler()
    labels = torch.tensor([0, 1, 2, 1, 0])
    result = sampling_speed(sampler, labels, warmup=2, repeats=3)
    assert len(sampler.calls) == 5  # 2 untimed + 3 timed
    assert all(torch.equal(call, labels) for call in sampler.calls)
    assert result["samples_per_call"] == 5 and result["repeats"] == 3 and result["warmup"] == 2
    assert len(result["per_repeat_samples_per_second"]) == 3
    assert math.isfinite(result["value"]) and result["value"] > 0
    # value = total samples / total time, consistent with the recorded seconds
    assert result["value"] == pytest.approx(15 / max(result["total_seconds"], 1e-12), rel=1e-6)
    assert result["torch_threads"] == torch.get_num_threads()
    json.dumps(result, allow_nan=False)


def test_rate_with_a_fake_clock_excludes_warmup(monkeypatch):
    # A fake clock: each sample costs 0.5 s, the first (warm-up) call pays 100 s extra.
    clock = {"now": 0.0, "calls": 0}

    def fake_sampler(labels):
        clock["calls"] += 1
        clock["now"] += 0.5 * len(labels) + (100.0 if clock["calls"] == 1 else 0.0)
        return torch.zeros(len(labels), 1, 2, 2)

    import medsyn.metrics.speed as speed

    monkeypatch.setattr(speed.time, "perf_counter", lambda: clock["now"])
    result = sampling_speed(fake_sampler, torch.zeros(4, dtype=torch.int64), warmup=1, repeats=3)
    assert result["total_seconds"] == pytest.approx(3 * 4 * 0.5)
    assert result["value"] == pytest.approx(2.0)  # 12 samples / 6 s
    assert result["per_repeat_samples_per_second"] == pytest.approx([2.0, 2.0, 2.0])


def test_wrong_number_of_samples_is_an_error():
    with pytest.raises(ValueError, match="returned 3 samples for 4 labels"):
        sampling_speed(lambda y: torch.zeros(3, 1, 2, 2), torch.zeros(4, dtype=torch.int64))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"labels": torch.zeros(0, dtype=torch.int64)}, "labels"),
        ({"labels": torch.zeros(3)}, "integer"),
        ({"warmup": -1}, "warmup"),
        ({"repeats": 0}, "repeats"),
        ({"sample_fn": 3}, "sample_fn"),
    ],
)
def test_bad_arguments(kwargs, match):
    arguments = {"sample_fn": lambda y: torch.zeros(len(y), 1), "labels": torch.zeros(2, dtype=torch.int64)}
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=match):
        sampling_speed(**arguments)
