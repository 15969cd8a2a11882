"""Feature extraction on the CPU: forward passes of CPU_FORWARD_BATCH_SIZE images against whole read batches.

    python benchmarks/bench_features.py                 # table: effnet_lite0 and the cnn3 domain extractor
    python benchmarks/bench_features.py --images 128
    python -m pytest benchmarks/bench_features.py --benchmark-only

What is timed: ``medsyn.metrics.features.extract_features(images, extractor, batch_size=64,
forward_batch_size=...)`` on seeded RGB 256 px images (uniform noise; the cost does not depend on the pixels),
for ``forward_batch_size`` in (1, 2, "auto" = CPU_FORWARD_BATCH_SIZE, 8, None = the whole read batch of 64),
best of ROUNDS, cases interleaved so that a change of load hits them alike. effnet_lite0 resizes to 224 px;
the domain extractor is a freshly initialised cnn3 (8 classes; the weights do not change the cost). The
features of every forward batch size agree with the whole-batch reference to float32 rounding
(``max_abs_gap``; tested in tests/metrics/features/test_feature_extract.py).
"""

from __future__ import annotations

import argparse
import time

import torch

from medsyn.metrics.features.domain import domain_extractor
from medsyn.metrics.features.extract import CPU_FORWARD_BATCH_SIZE, extract_features
from medsyn.models.classifiers import build_classifier

ROUNDS = 2
READ_BATCH = 64
FORWARDS: tuple[int | str | None, ...] = (1, 2, "auto", 8, None)
SIZE = 256


def extractors() -> dict[str, object]:
    torch.manual_seed(0)
    cnn3 = build_classifier("cnn3", num_classes=8, image_shape=(3, SIZE, SIZE)).eval()
    return {"effnet_lite0": "effnet_lite0", "cnn3 domain": domain_extractor(cnn3, image_shape=(3, SIZE, SIZE))}


def measure(count: int) -> list[dict[str, object]]:
    images = torch.rand(count, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    rows = []
    for name, extractor in extractors().items():
        extract_features(images[:4], extractor)  # build and warm the network
        best = {forward: float("inf") for forward in FORWARDS}
        outputs = {}
        for _ in range(ROUNDS):
            for forward in FORWARDS:
                started = time.perf_counter()
                outputs[forward] = extract_features(images, extractor, batch_size=READ_BATCH,
                                                    forward_batch_size=forward)
                best[forward] = min(best[forward], time.perf_counter() - started)
        for forward in FORWARDS:
            rows.append({"extractor": name, "forward_batch_size": forward, "images_per_s": count / best[forward],
                         "x_whole_batch": best[None] / best[forward],
                         "max_abs_gap": float((outputs[forward] - outputs[None]).abs().max())})
    return rows


def test_bench_features_forward_batches(benchmark):
    rows = []
    benchmark.pedantic(lambda: rows.extend(measure(16)), rounds=1, iterations=1)
    for row in rows:
        assert row["max_abs_gap"] < 1e-3
    benchmark.extra_info["rows"] = rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64)
    count = parser.parse_args().images
    print(f"torch threads {torch.get_num_threads()}, {count} images of 3x{SIZE}x{SIZE}, read batch {READ_BATCH}, "
          f"auto = {CPU_FORWARD_BATCH_SIZE}")
    print("| extractor | forward batch | images/s | x whole batch | max abs gap |\n|---|---:|---:|---:|---:|")
    for row in measure(count):
        print(f"| {row['extractor']} | {row['forward_batch_size']} | {row['images_per_s']:.1f} | "
              f"{row['x_whole_batch']:.2f} | {row['max_abs_gap']:.1e} |")


if __name__ == "__main__":
    main()
