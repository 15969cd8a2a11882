"""Sampling speed of every generator (paper 000 §4.1.3: samples per second) on CPU, and DDPM vs DDIM
step counts for the two diffusion models.

    python -m pytest benchmarks/bench_sampling.py --benchmark-only     # (make bench runs every file)
    python benchmarks/bench_sampling.py                                 # the same cases as a Markdown table

Models: each bundle's ``configs/tiny.yaml`` model_config (cvae, stylegan2, ddpm, ldm), built through the
registry for 1x32x32 and 1x64x64 images and 10 classes, with UNTRAINED weights: sampling cost does not
depend on the weights' values (same layers, same number of network calls), so training first would only
make the benchmark slower. A model that is not registered or cannot be imported is skipped with the reason.
Diffusion models sample with their tiny default (DDIM, 20 steps) in the per-model table; the sampler table
compares DDPM ancestral sampling (all T = 1000 steps) with DDIM at 50, 20 and 10 steps at 32 px.
Speed = c / t over timed calls after an untimed warm-up (``medsyn.metrics.speed.sampling_speed``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch
import yaml

from medsyn.models.registry import build_generator, generator_class

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("cvae", "stylegan2", "ddpm", "ldm")
SIZES = (32, 64)
NUM_CLASSES = 10
SAMPLES_PER_CALL = 20  # per-model table: 2 images per class
SAMPLER_SAMPLES_PER_CALL = 10  # sampler table: DDPM runs 1000 network calls, keep the batch small
SAMPLERS = (("ddpm", None), ("ddim", 50), ("ddim", 20), ("ddim", 10))


def tiny_model_config(name: str) -> dict:
    """The ``model_config`` of ``bundles/medsyn_<name>/configs/tiny.yaml``."""
    path = ROOT / "bundles" / f"medsyn_{name}" / "configs" / "tiny.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist (no tiny bundle config for {name!r})")
    return dict(yaml.safe_load(path.read_text()).get("model_config") or {})


def tiny_generator(name: str, size: int):
    """An untrained generator of the tiny bundle config for 1 x size x size images; skips when unavailable."""
    try:
        generator_class(name)
        config = tiny_model_config(name)
    except (ValueError, FileNotFoundError) as error:
        pytest.skip(f"{name} not available: {error}")
    torch.manual_seed(0)
    return build_generator(name, num_classes=NUM_CLASSES, image_shape=(1, size, size), **config)


def sampler_overrides(sampler: str, steps: int | None) -> dict:
    return {"sampler": sampler} if steps is None else {"sampler": sampler, "sampling_steps": steps}


def sampler_label(sampler: str, steps: int | None) -> str:
    return "ddpm-1000" if steps is None else f"{sampler}-{steps}"


def _labels(count: int) -> torch.Tensor:
    return torch.arange(count) % NUM_CLASSES


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name", MODELS)
def test_samples_per_second(benchmark, name, size):
    generator = tiny_generator(name, size)
    labels = _labels(SAMPLES_PER_CALL)
    generator.sample(labels[:2], seed=0)  # warm-up (allocator, lazy kernel choice)
    images = benchmark.pedantic(generator.sample, args=(labels,), kwargs={"seed": 0}, rounds=3, iterations=1)
    assert images.shape == (SAMPLES_PER_CALL, 1, size, size)
    benchmark.extra_info.update(
        samples_per_call=SAMPLES_PER_CALL,
        samples_per_second=SAMPLES_PER_CALL / benchmark.stats.stats.mean,
        torch_threads=torch.get_num_threads(),
        weights="untrained tiny bundle config",
    )


@pytest.mark.parametrize("sampler,steps", SAMPLERS, ids=[sampler_label(*case) for case in SAMPLERS])
@pytest.mark.parametrize("name", ("ddpm", "ldm"))
def test_diffusion_sampler_speed(benchmark, name, sampler, steps):
    generator = tiny_generator(name, 32)
    labels = _labels(SAMPLER_SAMPLES_PER_CALL)
    overrides = sampler_overrides(sampler, steps)
    generator.sample(labels[:2], seed=0, **sampler_overrides("ddim", 2))  # warm-up
    rounds = 1 if steps is None else 3  # 1000 network calls per DDPM round
    benchmark.pedantic(generator.sample, args=(labels,), kwargs={"seed": 0, **overrides}, rounds=rounds, iterations=1)
    benchmark.extra_info.update(
        samples_per_call=SAMPLER_SAMPLES_PER_CALL,
        network_calls=1000 if steps is None else steps,
        samples_per_second=SAMPLER_SAMPLES_PER_CALL / benchmark.stats.stats.mean,
        torch_threads=torch.get_num_threads(),
    )


def _table() -> str:
    """Both benchmarks as Markdown tables (medsyn.metrics.speed.sampling_speed: 1 warm-up, timed repeats)."""
    from medsyn.metrics.speed import sampling_speed

    def available(name: str) -> bool:
        try:
            generator_class(name)
            tiny_model_config(name)
            return True
        except (ValueError, FileNotFoundError) as error:
            print(f"skipping {name}: {error}", file=sys.stderr)
            return False

    names = [name for name in MODELS if available(name)]
    lines = [f"Samples/s on CPU ({torch.get_num_threads()} torch threads), {SAMPLES_PER_CALL} samples per call, "
             "untrained tiny bundle configs:", "", "| model | 32 px | 64 px |", "|---|---|---|"]  # fmt: skip
    for name in names:
        cells = []
        for size in SIZES:
            generator = build_generator(name, num_classes=NUM_CLASSES, image_shape=(1, size, size),
                                        **tiny_model_config(name))  # fmt: skip
            result = sampling_speed(lambda y: generator.sample(y, seed=0), _labels(SAMPLES_PER_CALL), repeats=3)
            cells.append(f"{result['value']:.3g}")
        lines.append(f"| {name} | {' | '.join(cells)} |")
    lines += ["", f"Diffusion samplers at 32 px, {SAMPLER_SAMPLES_PER_CALL} samples per call (samples/s):", "",
              "| model | " + " | ".join(sampler_label(*case) for case in SAMPLERS) + " |",
              "|---|" + "---|" * len(SAMPLERS)]  # fmt: skip
    for name in [name for name in ("ddpm", "ldm") if name in names]:
        generator = build_generator(name, num_classes=NUM_CLASSES, image_shape=(1, 32, 32), **tiny_model_config(name))
        cells = []
        for sampler, steps in SAMPLERS:
            overrides = sampler_overrides(sampler, steps)
            result = sampling_speed(lambda y: generator.sample(y, seed=0, **overrides), _labels(SAMPLER_SAMPLES_PER_CALL),
                                    warmup=1 if steps else 0, repeats=1 if steps is None else 3)  # fmt: skip
            cells.append(f"{result['value']:.3g}")
        lines.append(f"| {name} | {' | '.join(cells)} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    print(_table())
