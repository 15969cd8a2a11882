"""Batched DeepFool (medsyn.metrics.robustness.deepfool) vs torchattacks.DeepFool on a batch of 256 digits.

    python benchmarks/bench_deepfool.py                      # prints times and the speed-up per classifier
    python -m pytest benchmarks/bench_deepfool.py --benchmark-only

Both attack the same trained classifier, same images, 5 steps, overshoot 0.02. Wall-clock time, best of
``ROUNDS``; CPU threads as torch sets them (export OMP_NUM_THREADS to pin).
"""

from __future__ import annotations

import time

import torch

from medsyn.data.digits import load_digits_images
from medsyn.metrics.robustness import deepfool
from medsyn.models.classifier_training import train_classifier

BATCH = 256
STEPS = 5
ROUNDS = 1


def trained_classifier(arch: str):
    """``arch`` trained 2 epochs on 1000 digits; returns (model, 256 held-out images, their labels)."""
    digits = load_digits_images(size=32)
    order = torch.randperm(len(digits), generator=torch.Generator().manual_seed(0))
    train, val = digits.subset(order[:1000]), digits.subset(order[1000:1200])
    test = digits.subset(order[1200 : 1200 + BATCH])
    model, _ = train_classifier(train, val, arch=arch, epochs=2, lr=3e-3, seed=0)
    return model.eval(), test.images, test.labels


def _best_time(function, rounds: int = ROUNDS) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def compare(arch: str) -> dict:
    import torchattacks

    model, images, labels = trained_classifier(arch)
    reference = torchattacks.DeepFool(model, steps=STEPS, overshoot=0.02)
    batched_seconds = _best_time(lambda: deepfool(model, images, labels, steps=STEPS))
    reference_seconds = _best_time(lambda: reference(images, labels))
    with torch.no_grad():
        clean = (model(images).argmax(1) == labels).double().mean().item()
    return {
        "arch": arch,
        "batch": BATCH,
        "clean_accuracy": clean,
        "medsyn_seconds": batched_seconds,
        "torchattacks_seconds": reference_seconds,
        "speedup": reference_seconds / batched_seconds,
        "threads": torch.get_num_threads(),
    }


def test_bench_deepfool_batched(benchmark):
    model, images, labels = trained_classifier("small_cnn")
    benchmark.pedantic(lambda: deepfool(model, images, labels, steps=STEPS), rounds=ROUNDS, iterations=1)


def test_bench_deepfool_torchattacks(benchmark):
    import torchattacks

    model, images, labels = trained_classifier("small_cnn")
    attack = torchattacks.DeepFool(model, steps=STEPS, overshoot=0.02)
    benchmark.pedantic(lambda: attack(images, labels), rounds=ROUNDS, iterations=1)


if __name__ == "__main__":
    for arch in ("small_cnn", "cnn4"):
        result = compare(arch)
        print(
            f"{arch:10s} batch {result['batch']} ({result['threads']} threads, "
            f"clean acc {result['clean_accuracy']:.2f}): "
            f"medsyn {result['medsyn_seconds']:.2f} s, torchattacks {result['torchattacks_seconds']:.2f} s, "
            f"speed-up {result['speedup']:.1f}x"
        )
