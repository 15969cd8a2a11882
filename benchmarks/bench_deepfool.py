"""Batched DeepFool (medsyn.metrics.robustness.deepfool), both engines, vs torchattacks.DeepFool on 256 digits.

    python benchmarks/bench_deepfool.py                      # the table in benchmarks/README.md
    python -m pytest benchmarks/bench_deepfool.py --benchmark-only

All attack the same trained classifier, same 256 images, 5 steps, overshoot 0.02: medsyn with
``engine="sequential"`` (the accelerator) and ``engine="autograd"`` (the reference), and torchattacks. Each runs
with 1 and with 2 torch threads (``torch.set_num_threads``); the speed-ups are best time over best time, all
measured in the same run (wall clock, best of ``ROUNDS``), in float32 (torchattacks' usual arithmetic) and
float64 (the precision ``adversarial_accuracy`` uses by default). torchattacks attacks one image at a time, so
a second thread does not help it (its calls are too small to split). The sequential / autograd ratio is the
measurement behind ``policy.sequential_pays`` (``engine="auto"`` picks the sequential engine for these models).
"""

from __future__ import annotations

import copy
import time

import pytest
import torch

from medsyn.data.digits import load_digits_images
from medsyn.metrics.robustness import deepfool, resolve_engine
from medsyn.models.classifier_training import train_classifier

BATCH = 256
STEPS = 5
ROUNDS = 3
THREAD_COUNTS = (1, 2)
# small_cnn: medsyn's demo classifier; cnn4 / cnn3: paper 000 Appendix A (Corn / PlantVillage).
ARCHITECTURES = ("small_cnn", "cnn4", "cnn3")
# The engines timed ("auto" is one of them: resolve_engine says which).
TIMED_ENGINES = ("sequential", "autograd")


def trained_classifier(arch: str):
    """``arch`` trained 2 epochs on 1000 digits; returns (model, 256 held-out images, their labels)."""
    digits = load_digits_images(size=32)
    order = torch.randperm(len(digits), generator=torch.Generator().manual_seed(0))
    train, val = digits.subset(order[:1000]), digits.subset(order[1000:1200])
    test = digits.subset(order[1200 : 1200 + BATCH])
    model, _ = train_classifier(train, val, arch=arch, epochs=2, lr=3e-3, seed=0)
    return model.eval(), test.images, test.labels


def _best_time(function, threads: int, rounds: int = ROUNDS) -> float:
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        best = float("inf")
        for _ in range(rounds):
            start = time.perf_counter()
            function()
            best = min(best, time.perf_counter() - start)
        return best
    finally:
        torch.set_num_threads(previous)


def compare(arch: str, dtype: torch.dtype = torch.float32) -> dict:
    """Seconds for each medsyn engine and torchattacks at each thread count, adversarial accuracies, speed-ups."""
    import torchattacks

    model, images, labels = trained_classifier(arch)
    model, images = copy.deepcopy(model).to(dtype), images.to(dtype)
    reference = torchattacks.DeepFool(model, steps=STEPS, overshoot=0.02)
    result = {
        "arch": arch, "batch": BATCH, "dtype": str(dtype).removeprefix("torch."),
        "auto_engine": resolve_engine(model, images, "auto"),
    }
    for threads in THREAD_COUNTS:
        for engine in TIMED_ENGINES:
            result[f"{engine}_{threads}t"] = _best_time(
                lambda engine=engine: deepfool(model, images, labels, steps=STEPS, engine=engine), threads
            )
        result[f"torchattacks_{threads}t"] = _best_time(lambda: reference(images, labels), threads)
    result["clean_accuracy"] = _accuracy(model, images, labels)
    for engine in TIMED_ENGINES:
        adversarial = deepfool(model, images, labels, steps=STEPS, engine=engine)
        result[f"{engine}_adversarial_accuracy"] = _accuracy(model, adversarial, labels)
    result["torchattacks_adversarial_accuracy"] = _accuracy(model, reference(images, labels), labels)
    best = {name: min(result[f"{name}_{t}t"] for t in THREAD_COUNTS) for name in (*TIMED_ENGINES, "torchattacks")}
    result["sequential_over_autograd"] = {t: result[f"autograd_{t}t"] / result[f"sequential_{t}t"] for t in THREAD_COUNTS}
    result["speedup"] = {engine: best["torchattacks"] / best[engine] for engine in TIMED_ENGINES}
    return result


def _accuracy(model, images, labels) -> float:
    with torch.no_grad():
        return (model(images).argmax(1) == labels).double().mean().item()


@pytest.fixture(scope="module")
def small_cnn_case():
    return trained_classifier("small_cnn")


@pytest.mark.parametrize("engine", TIMED_ENGINES)
def test_bench_deepfool_batched(benchmark, small_cnn_case, engine):
    """Times medsyn's ``engine`` on small_cnn (float32, 256 images, 5 steps); extra_info has its adversarial
    accuracy and torchattacks' best time on the same images, measured in the same run."""
    torchattacks = pytest.importorskip("torchattacks")
    model, images, labels = small_cnn_case
    benchmark.pedantic(lambda: deepfool(model, images, labels, steps=STEPS, engine=engine), rounds=ROUNDS, iterations=1)
    reference = torchattacks.DeepFool(model, steps=STEPS, overshoot=0.02)
    reference_seconds = _best_time(lambda: reference(images, labels), torch.get_num_threads())
    benchmark.extra_info.update(
        engine=engine,
        auto_engine=resolve_engine(model, images, "auto"),
        adversarial_accuracy=_accuracy(model, deepfool(model, images, labels, steps=STEPS, engine=engine), labels),
        torchattacks_seconds=reference_seconds,
        speedup_over_torchattacks=reference_seconds / benchmark.stats.stats.min,
        threads=torch.get_num_threads(),
    )


if __name__ == "__main__":
    print(f"batch {BATCH}, {STEPS} steps; seconds (best of {ROUNDS}) with 1 / 2 threads")
    for dtype in (torch.float32, torch.float64):
        for arch in ARCHITECTURES:
            r = compare(arch, dtype)
            print(
                f"{r['dtype']} {arch:10s} auto={r['auto_engine']} clean {r['clean_accuracy']:.3f} | adversarial "
                f"sequential {r['sequential_adversarial_accuracy']:.3f} autograd {r['autograd_adversarial_accuracy']:.3f} "
                f"torchattacks {r['torchattacks_adversarial_accuracy']:.3f} | sequential {r['sequential_1t']:.2f} / "
                f"{r['sequential_2t']:.2f} s | autograd {r['autograd_1t']:.2f} / {r['autograd_2t']:.2f} s | "
                f"torchattacks {r['torchattacks_1t']:.2f} / {r['torchattacks_2t']:.2f} s | sequential vs autograd "
                f"{r['sequential_over_autograd'][1]:.1f}x / {r['sequential_over_autograd'][2]:.1f}x | best vs "
                f"torchattacks: sequential {r['speedup']['sequential']:.1f}x, autograd {r['speedup']['autograd']:.1f}x",
                flush=True,
            )
