"""FID with few samples in many dimensions: the n x m dual form against the d x d primal form.

    python benchmarks/bench_fid.py                   # table: n = 4 and 64 samples, d = 1024 .. 12288
    python -m pytest benchmarks/bench_fid.py --benchmark-only

What is timed: ``medsyn.metrics.fid(a, b, form=...)`` on float64 Gaussian features a, b [n, d] (best of
ROUNDS). The primal form (covariances, two symmetric eigen-decompositions of d x d matrices) is timed only
up to d = PRIMAL_MAX_DIM: its O(d^3) cost makes d = 12288 take minutes, which is the case the dual form
exists for. Both forms give the same value to ~1e-8 relative (reported as ``relative_gap``).
"""

from __future__ import annotations

import time

import numpy as np

from medsyn.metrics import fid

ROUNDS = 3
PRIMAL_MAX_DIM = 2048
CASES = [(4, 1024), (4, 2048), (4, 12288), (64, 2048), (64, 12288)]


def _features(n: int, d: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(n * 100003 + d)
    return rng.normal(size=(n, d)), rng.normal(0.1, 1.1, size=(n, d))


def _best_time(call) -> tuple[float, float]:
    best, value = float("inf"), 0.0
    for _ in range(ROUNDS):
        start = time.perf_counter()
        value = call()
        best = min(best, time.perf_counter() - start)
    return best, value


def compare(n: int, d: int) -> dict[str, float]:
    a, b = _features(n, d)
    dual_s, dual_value = _best_time(lambda: fid(a, b, form="dual"))
    result = {"n": n, "d": d, "dual_s": dual_s, "auto_is_dual": float(fid(a, b) == dual_value)}
    if d <= PRIMAL_MAX_DIM:
        primal_s, primal_value = _best_time(lambda: fid(a, b, form="primal"))
        result.update(
            primal_s=primal_s, speedup=primal_s / dual_s, relative_gap=abs(primal_value - dual_value) / dual_value
        )
    return result


def test_bench_fid_dual_4x12288(benchmark):
    """The issue's case: 4 images of 12288 features (dual form; the primal form would take minutes)."""
    a, b = _features(4, 12288)
    benchmark.pedantic(lambda: fid(a, b), rounds=ROUNDS, iterations=1)
    benchmark.extra_info.update(compare(4, 2048))


if __name__ == "__main__":
    for n, d in CASES:
        r = compare(n, d)
        primal = (
            f"primal {r['primal_s'] * 1e3:9.1f} ms  speedup {r['speedup']:7.0f}x  gap {r['relative_gap']:.1e}"
            if "primal_s" in r
            else "primal (not timed: O(d^3))"
        )
        print(f"n={n:3d} d={d:5d}  dual {r['dual_s'] * 1e3:8.2f} ms  {primal}  auto=dual: {bool(r['auto_is_dual'])}")
