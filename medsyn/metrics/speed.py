"""Sampling speed (paper 000 §4.1.3): S(G) = c / t, samples generated per second for a fixed count c,
timed after a warm-up.

The warm-up calls are not timed: the first calls of a model pay one-off costs (allocator growth, lazy
kernel selection, JIT, caches) that say nothing about steady-state generation. Each timed repeat
generates the same ``c = len(labels)`` images; the reported value uses the total time of all repeats,
S = repeats * c / sum(t_r), i.e. the paper's c / t with c counting every timed sample. The per-repeat
rates are returned too, so a report can show their spread. The CPU thread count is recorded because
S depends on it as much as on the model.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import torch

__all__ = ["sampling_speed"]


def _count_samples(output: Any, expected: int) -> int:
    if not isinstance(output, torch.Tensor) or output.ndim < 1:
        raise ValueError(f"sample_fn must return a tensor of images [N,...], got {type(output).__name__}")
    if output.shape[0] != expected:
        raise ValueError(f"sample_fn returned {output.shape[0]} samples for {expected} labels")
    return expected


def _synchronize(output: torch.Tensor) -> None:
    # CUDA kernels run asynchronously: without a sync the clock would stop before the work is done.
    if output.is_cuda:
        torch.cuda.synchronize(output.device)


def sampling_speed(
    sample_fn: Callable[[torch.Tensor], torch.Tensor],
    labels: torch.Tensor,
    warmup: int = 1,
    repeats: int = 3,
) -> dict[str, Any]:
    """Samples per second of ``sample_fn(labels)``.

    sample_fn: labels int64 [c] -> images [c, ...] (e.g. ``lambda y: generator.sample(y, seed=0)``)
    labels: int64 [c], c >= 1: the class of each sample generated per call (the fixed count c)
    warmup: untimed calls before timing (>= 0)
    repeats: timed calls (>= 1)
    returns: {"value": samples/s over all timed calls, "samples_per_call": c, "repeats", "warmup",
              "total_seconds", "per_repeat_samples_per_second": [..], "torch_threads", "clock"}
    """
    if not callable(sample_fn):
        raise ValueError(f"sample_fn must be callable, got {type(sample_fn).__name__}")
    labels = torch.as_tensor(labels)
    if labels.ndim != 1 or labels.shape[0] == 0:
        raise ValueError(f"labels must be a non-empty 1-d tensor of class indices, got shape {tuple(labels.shape)}")
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise ValueError(f"labels must be integer class indices, got dtype {labels.dtype}")
    for name, value, low in (("warmup", warmup, 0), ("repeats", repeats, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    count = int(labels.shape[0])

    # no_grad, not inference_mode: a generator that creates and caches tensors while sampling (noise
    # buffers, scheduler tables) must still be usable for training afterwards
    with torch.no_grad():
        for _ in range(warmup):
            output = sample_fn(labels)
            _count_samples(output, count)
            _synchronize(output)
        durations = []
        for _ in range(repeats):
            start = time.perf_counter()
            output = sample_fn(labels)
            _synchronize(output)
            durations.append(time.perf_counter() - start)
            _count_samples(output, count)

    total = float(sum(durations))
    # A clock tick of 0 s (a trivial sample_fn on a coarse clock) would give inf: report the floor of
    # the clock's resolution instead so the value stays finite and an upper bound.
    resolution = time.get_clock_info("perf_counter").resolution
    total_for_rate = max(total, resolution)
    value = repeats * count / total_for_rate
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"sampling speed is not a positive finite number ({value}); total time {total} s")
    return {
        "value": value,
        "unit": "samples/s",
        "samples_per_call": count,
        "repeats": repeats,
        "warmup": warmup,
        "total_seconds": total,
        "per_repeat_samples_per_second": [count / max(d, resolution) for d in durations],
        "torch_threads": torch.get_num_threads(),
        "clock": "time.perf_counter",
    }
