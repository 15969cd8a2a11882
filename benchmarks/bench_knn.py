"""k-NN scans: prdc and nearest_neighbors (compiled, exact) against full-matrix and scikit-learn references.

    python benchmarks/bench_knn.py                   # prdc n=m=10k (d=2048, 4096), nn 10k x 4096, prdc 50k memory
    python benchmarks/bench_knn.py --quick           # n=m=4k only (about a minute)
    python -m pytest benchmarks/bench_knn.py --benchmark-only

Every measurement runs in a fresh subprocess (``--one NAME N D``) so that its peak RSS (``ru_maxrss``) is its
own. Reported per case: wall time (best of ROUNDS inside the subprocess), peak RSS, and the peak RSS right
after the features were generated (the inputs themselves), so the scan's own memory is the difference.

Cases
  prdc_medsyn      medsyn.metrics.prdc(real, synthetic, k=3) (backend "auto": the C++ kernel)
  prdc_numpy       full-matrix reference: three float32 distance matrices (numpy GEMM expansion) + np.partition,
                   the way the reference ``prdc`` package and torch-fidelity compute it
  gemm_bare        the bare matrix products the distances need: X X^T, Y Y^T, X Y^T (torch float32 GEMM, MKL).
                   The two self products are symmetric, so the work the scan really needs is 2 full products
                   ("gemm_needed" = 2/3 of gemm_bare); medsyn computes half of each symmetric matrix.
  nn_medsyn        medsyn.metrics.nearest_neighbors(queries, reference)
  nn_sklearn       sklearn.neighbors.NearestNeighbors(n_neighbors=1).fit(reference).kneighbors(queries)
  --pixel          pixel-space DCR blocks (256 x 256 images of 3x256x256): nearest_neighbors' float64 GEMM
                   screen (screen "on", the default there) against its float32 tile scan ("off")

Features: a 10-cluster Gaussian mixture passed through ReLU (non-negative, clustered, like penultimate-layer
CNN features), float32, fixed seed.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np
import torch

ROUNDS = 1
K = 3


def clustered_features(n: int, dim: int, seed: int) -> np.ndarray:
    """n samples of one fixed distribution (the cluster centres do not depend on ``seed``)."""
    centres = np.random.default_rng(0).normal(size=(10, dim)).astype(np.float32)
    rng = np.random.default_rng(seed)
    x = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 1000):  # in chunks: no float64 temporaries of the whole set inflate the peak RSS
        stop = min(start + 1000, n)
        labels = rng.integers(0, 10, size=stop - start)
        x[start:stop] = (
            centres[labels] + rng.standard_normal(size=(stop - start, dim), dtype=np.float32) * 0.8
        )
    return np.maximum(x, 0.0, out=x)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kilobytes


def prdc_numpy(real: np.ndarray, synthetic: np.ndarray, k: int = K) -> dict[str, float]:
    """Full-matrix reference (float32 GEMM expansion as the prdc package's sklearn pairwise distances)."""

    def distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
        return np.sqrt(np.maximum(sq, 0.0, out=sq), out=sq)

    def radii(x: np.ndarray) -> np.ndarray:
        d = distances(x, x)
        return np.partition(d, k, axis=1)[:, k]  # k+1-th smallest including self at 0

    real_radii, synthetic_radii = radii(real), radii(synthetic)
    cross = distances(real, synthetic)
    inside = cross <= real_radii[:, None]
    return {
        "precision": float(inside.any(0).mean()),
        "recall": float((cross <= synthetic_radii[None, :]).any(1).mean()),
        "density": float(inside.sum() / (k * synthetic.shape[0])),
        "coverage": float((cross.min(1) <= real_radii).mean()),
    }


def gemm_bare(real: np.ndarray, synthetic: np.ndarray) -> None:
    x, y = torch.from_numpy(real), torch.from_numpy(synthetic)
    for a, b in ((x, x), (y, y), (x, y)):
        torch.mm(a, b.T)


def run_one(name: str, n: int, dim: int) -> dict:
    real = clustered_features(n, dim, seed=1)
    synthetic = clustered_features(n, dim, seed=2)
    inputs_rss = peak_rss_mb()
    if name == "prdc_medsyn":
        from medsyn.metrics.prdc import prdc

        job = lambda: prdc(real, synthetic, k=K)
    elif name == "prdc_numpy":
        job = lambda: prdc_numpy(real, synthetic)
    elif name == "gemm_bare":
        job = lambda: gemm_bare(real, synthetic)
    elif name == "nn_medsyn":
        from medsyn.metrics.neighbors import nearest_neighbors

        job = lambda: nearest_neighbors(synthetic, real)
    elif name == "nn_sklearn":
        from sklearn.neighbors import NearestNeighbors

        job = lambda: NearestNeighbors(n_neighbors=1).fit(real).kneighbors(synthetic)
    else:
        raise ValueError(f"unknown case {name!r}")
    best, result = float("inf"), None
    for _ in range(ROUNDS):
        start = time.perf_counter()
        result = job()
        best = min(best, time.perf_counter() - start)
    out = {
        "case": name,
        "n": n,
        "dim": dim,
        "seconds": best,
        "peak_rss_mb": peak_rss_mb(),
        "inputs_rss_mb": inputs_rss,
    }
    if isinstance(result, dict):
        out["result"] = result
    if name == "nn_sklearn":  # accuracy of the float32 expansion vs the exact answer (computed after timing)
        from medsyn.metrics.neighbors import nearest_neighbors

        exact, _ = nearest_neighbors(synthetic, real)
        out["max_rel_error_vs_exact"] = float(np.max(np.abs(result[0][:, 0] / exact.numpy() - 1)))
    return out


def measure(name: str, n: int, dim: int) -> dict:
    """One case in a fresh interpreter (own peak RSS)."""
    done = subprocess.run(
        [sys.executable, __file__, "--one", name, str(n), str(dim)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def report(rows: list[dict]) -> None:
    for r in rows:
        extra = f"  result {r['result']}" if "result" in r else ""
        if "max_rel_error_vs_exact" in r:
            extra = f"  max rel. error of NN distance vs exact {r['max_rel_error_vs_exact']:.2e}"
        print(
            f"{r['case']:12s} n={r['n']:6d} d={r['dim']:5d}  {r['seconds']:8.2f} s  peak RSS {r['peak_rss_mb']:7.0f} MB "
            f"(inputs {r['inputs_rss_mb']:6.0f} MB){extra}",
            flush=True,
        )


def prdc_comparison(n: int, dim: int) -> None:
    rows = [measure(case, n, dim) for case in ("prdc_medsyn", "gemm_bare", "prdc_numpy")]
    report(rows)
    medsyn, bare, numpy_ref = rows
    needed = bare["seconds"] * 2 / 3
    print(
        f"  -> medsyn / needed GEMM time = {medsyn['seconds'] / needed:.2f}x "
        f"(/ all three full products {medsyn['seconds'] / bare['seconds']:.2f}x); "
        f"full-matrix reference / medsyn = {numpy_ref['seconds'] / medsyn['seconds']:.2f}x; "
        f"results equal: {medsyn['result'] == numpy_ref['result']}",
        flush=True,
    )


PIXEL_DIM = 3 * 256 * 256


def pixel_images(count: int, seed: int) -> torch.Tensor:
    """``count`` RGB 256 px stand-ins flattened [count, 196608]: a smooth field per image plus noise, in [0, 1]."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(count, 3, 8, 8, generator=generator)
    smooth = torch.nn.functional.interpolate(coarse, size=(256, 256), mode="bilinear", align_corners=False)
    return (0.8 * smooth + 0.2 * torch.rand(count, 3, 256, 256, generator=generator)).clamp(0, 1).flatten(1)


def pixel_space_comparison(queries: int, reference: int) -> None:
    """Pixel-space nearest neighbours (DCR at 256 px): the float64 GEMM screen against the float32 tile scan."""
    from medsyn.metrics.neighbors import nearest_neighbors

    q, r = pixel_images(queries, 1), pixel_images(reference, 2)
    timings, results = {}, {}
    for screen in ("on", "off"):
        start = time.perf_counter()
        results[screen] = nearest_neighbors(q, r, screen=screen)
        timings[screen] = time.perf_counter() - start
    equal = all(torch.equal(a, b) for a, b in zip(results["on"], results["off"]))
    pairs = queries * reference
    print(f"pixel space {queries} x {reference} images of 3x256x256: screen on {timings['on']:.2f} s "
          f"({pairs / timings['on']:,.0f} pairs/s, {pairs * PIXEL_DIM * 2 / timings['on'] / 1e9:.1f} GFLOP/s of "
          f"float64 products), off {timings['off']:.2f} s ({pairs / timings['off']:,.0f} pairs/s): "
          f"{timings['off'] / timings['on']:.1f}x; results bit-equal: {equal}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--one", nargs=3, metavar=("CASE", "N", "DIM"), help="run one case, print JSON")
    parser.add_argument("--quick", action="store_true", help="n=m=4000, d=2048 only")
    parser.add_argument("--skip-50k", action="store_true", help="skip the n=m=50k memory run")
    parser.add_argument("--pixel", action="store_true", help="only pixel-space DCR at 256 px: screen on vs off")
    args = parser.parse_args()
    if args.pixel:
        pixel_space_comparison(256, 256)
        return
    if args.one:
        name, n, dim = args.one
        print(json.dumps(run_one(name, int(n), int(dim))))
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)
    if args.quick:
        prdc_comparison(4000, 2048)
        report([measure("nn_medsyn", 4000, 2048), measure("nn_sklearn", 4000, 2048)])
        return
    for dim in (2048, 4096):
        prdc_comparison(10_000, dim)
    report([measure("nn_medsyn", 10_000, 4096), measure("nn_sklearn", 10_000, 4096)])
    if not args.skip_50k:
        report([measure("prdc_medsyn", 50_000, 2048)])


# pytest-benchmark entry points (small enough for `make bench`; the script above gives the full table).
# Each puts its reference's time, measured in the same run, and the ratio into extra_info.
BENCH_N, BENCH_D = 4000, 2048


def _seconds(job) -> float:
    start = time.perf_counter()
    job()
    return time.perf_counter() - start


def test_bench_prdc_medsyn(benchmark):
    from medsyn.metrics.prdc import prdc

    real, synthetic = clustered_features(BENCH_N, BENCH_D, 1), clustered_features(BENCH_N, BENCH_D, 2)
    result = benchmark.pedantic(lambda: prdc(real, synthetic, k=K), rounds=1, iterations=1)
    seconds = benchmark.stats.stats.min
    needed_gemm = _seconds(lambda: gemm_bare(real, synthetic)) * 2 / 3
    reference = _seconds(lambda: prdc_numpy(real, synthetic))
    benchmark.extra_info.update(
        n=BENCH_N,
        dim=BENCH_D,
        pairs_per_second=3 * BENCH_N * BENCH_N / seconds,
        needed_gemm_seconds=needed_gemm,
        ratio_to_needed_gemm=seconds / needed_gemm,
        full_matrix_reference_seconds=reference,
        speedup_vs_full_matrix=reference / seconds,
        result=result,
    )


def test_bench_nearest_neighbors_medsyn(benchmark):
    from sklearn.neighbors import NearestNeighbors

    from medsyn.metrics.neighbors import nearest_neighbors

    real, synthetic = clustered_features(BENCH_N, BENCH_D, 1), clustered_features(BENCH_N, BENCH_D, 2)
    benchmark.pedantic(lambda: nearest_neighbors(synthetic, real), rounds=1, iterations=1)
    seconds = benchmark.stats.stats.min
    reference = _seconds(lambda: NearestNeighbors(n_neighbors=1).fit(real).kneighbors(synthetic))
    benchmark.extra_info.update(
        n=BENCH_N,
        dim=BENCH_D,
        queries_per_second=BENCH_N / seconds,
        sklearn_seconds=reference,
        speedup_vs_sklearn=reference / seconds,
    )


if __name__ == "__main__":
    main()


def test_bench_nearest_neighbors_pixel_space(benchmark):
    """Pixel-space DCR blocks (3x256x256): the float64 GEMM screen (default), the tile scan in extra_info."""
    from medsyn.metrics.neighbors import nearest_neighbors

    queries, reference = pixel_images(64, 1), pixel_images(128, 2)
    screened = benchmark.pedantic(lambda: nearest_neighbors(queries, reference), rounds=1, iterations=1)
    seconds = benchmark.stats.stats.min
    start = time.perf_counter()
    tiles = nearest_neighbors(queries, reference, screen="off")
    tile_seconds = time.perf_counter() - start
    assert all(torch.equal(a, b) for a, b in zip(screened, tiles))
    benchmark.extra_info.update(pairs_per_second=64 * 128 / seconds, tile_scan_seconds=tile_seconds,
                                speedup_vs_tile_scan=tile_seconds / seconds)
