"""Batched DeepFool (medsyn.metrics.robustness.deepfool) vs torchattacks.DeepFool on a batch of 256 digits.

    python benchmarks/bench_deepfool.py                      # the table in benchmarks/README.md
    python -m pytest benchmarks/bench_deepfool.py --benchmark-only

Both attack the same trained classifier, same 256 images, 5 steps, overshoot 0.02. Each side runs
with 1 and with 2 torch threads (``torch.set_num_threads``); the speed-up is torchattacks' best time over
medsyn's best time, all measured in the same run (wall clock, best of ``ROUNDS``), in float32 (torchattacks'
usual arithmetic) and float64 (the precision ``adversarial_accuracy`` uses by default). torchattacks attacks
one image at a time, so a second thread does not help it (its calls are too small to split).
"""

from __future__ import annotations

import copy
import time

import torch

from medsyn.data.digits import load_digits_images
from medsyn.metrics.robustness import deepfool
from medsyn.models.classifier_training import train_classifier

BATCH = 256
STEPS = 5
ROUNDS = 3
THREAD_COUNTS = (1, 2)
# small_cnn: medsyn's demo classifier; cnn4 / cnn3: paper 000 Appendix A (Corn / PlantVillage).
ARCHITECTURES = ("small_cnn", "cnn4", "cnn3")


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
    """Seconds for medsyn and torchattacks at each thread count, adversarial accuracies, speed-up."""
    import torchattacks

    model, images, labels = trained_classifier(arch)
    model, images = copy.deepcopy(model).to(dtype), images.to(dtype)
    reference = torchattacks.DeepFool(model, steps=STEPS, overshoot=0.02)
    result = {"arch": arch, "batch": BATCH, "dtype": str(dtype).removeprefix("torch.")}
    for threads in THREAD_COUNTS:
        result[f"medsyn_{threads}t"] = _best_time(lambda: deepfool(model, images, labels, steps=STEPS), threads)
        result[f"torchattacks_{threads}t"] = _best_time(lambda: reference(images, labels), threads)
    result["clean_accuracy"] = _accuracy(model, images, labels)
    result["medsyn_adversarial_accuracy"] = _accuracy(model, deepfool(model, images, labels), labels)
    result["torchattacks_adversarial_accuracy"] = _accuracy(model, reference(images, labels), labels)
    result["same_threads_speedup"] = {
        threads: result[f"torchattacks_{threads}t"] / result[f"medsyn_{threads}t"] for threads in THREAD_COUNTS
    }
    medsyn_best = min(result[f"medsyn_{threads}t"] for threads in THREAD_COUNTS)
    reference_best = min(result[f"torchattacks_{threads}t"] for threads in THREAD_COUNTS)
    result["speedup"] = reference_best / medsyn_best
    return result


def _accuracy(model, images, labels) -> float:
    with torch.no_grad():
        return (model(images).argmax(1) == labels).double().mean().item()


def test_bench_deepfool_batched(benchmark):
    """Times medsyn on small_cnn; extra_info has the whole comparison (torchattacks timed in the same run)."""
    model, images, labels = trained_classifier("small_cnn")
    benchmark.pedantic(lambda: deepfool(model, images, labels, steps=STEPS), rounds=ROUNDS, iterations=1)
    result = compare("small_cnn")
    benchmark.extra_info.update(
        {key: value for key, value in result.items() if key != "same_threads_speedup"},
        threads=torch.get_num_threads(),
    )


if __name__ == "__main__":
    print(f"batch {BATCH}, {STEPS} steps; seconds (best of {ROUNDS}) with 1 / 2 threads")
    for dtype in (torch.float32, torch.float64):
        for arch in ARCHITECTURES:
            r = compare(arch, dtype)
            print(
                f"{r['dtype']} {arch:10s} clean {r['clean_accuracy']:.3f} adversarial medsyn "
                f"{r['medsyn_adversarial_accuracy']:.3f} torchattacks {r['torchattacks_adversarial_accuracy']:.3f} | "
                f"medsyn {r['medsyn_1t']:.2f} / {r['medsyn_2t']:.2f} s | torchattacks {r['torchattacks_1t']:.2f} / "
                f"{r['torchattacks_2t']:.2f} s | same threads {r['same_threads_speedup'][1]:.1f}x / "
                f"{r['same_threads_speedup'][2]:.1f}x | best vs best {r['speedup']:.1f}x",
                flush=True,
            )
