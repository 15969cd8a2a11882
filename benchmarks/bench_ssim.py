"""ssim_max throughput against a scikit-image double loop and the pure-torch twin, on the same pairs.

    python -m pytest benchmarks/bench_ssim.py --benchmark-only        # (make bench runs every file)
    python benchmarks/bench_ssim.py                                     # same numbers, as a table

Images: crops of scikit-image's sample photographs (grey, [0,1]) plus mild noise, so that the candidate
re-check of the scan sees natural SSIM distributions; q synthetic x n real at 64, 128 and 256 px, uniform
window (skimage defaults). At 256 px two sizes: 16 x 128 (per-image statistics and the float64 re-check
are amortised over few pairs) and 32 x 256, closer to a privacy audit (hundreds to thousands of images);
scikit-image runs over every pair of each case (~30 s for 32 x 256). Each row reports pairs/s; ``extra_info`` of the medsyn rows holds the ratio to
scikit-image and to the torch twin measured in the same run, and the fraction of the machine's float32
peak (torch.mm sgemm on the same threads) reached, counting the kernel's float32 work per pair.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
import pytest
import torch
from skimage import data as skdata
from skimage.metrics import structural_similarity
from skimage.transform import resize

from medsyn.kernels.ssim_torch import ssim_max_torch
from medsyn.metrics import ssim_max
from medsyn.metrics.ssim import ssim_window

# (size, q synthetic, n real). skimage is timed on every pair of a case; the torch twin (slower than
# skimage at 256 px) on its first TWIN_SYNTHETIC[size] synthetic images.
CASES = [(64, 32, 256), (128, 16, 256), (256, 16, 128), (256, 32, 256)]
CASE_IDS = [f"{size}px-{q}x{n}" for size, q, n in CASES]
TWIN_SYNTHETIC = {64: 8, 128: 4, 256: 2}
THREADS = int(os.environ.get("OMP_NUM_THREADS", os.cpu_count() or 1))
RESULTS: dict[tuple[str, tuple[int, int, int] | int], float] = {}


def sample_images(count: int, size: int, seed: int) -> np.ndarray:
    """count grey crops [count, size, size] float32 in [0,1] from several skimage photographs."""
    rng = np.random.default_rng(seed)
    sources = [skdata.camera(), skdata.coins(), skdata.moon(), skdata.page(), skdata.grass(), skdata.brick()]
    sources = [s.astype(np.float64) / 255.0 for s in sources]
    out = np.empty((count, size, size), np.float32)
    for i in range(count):
        src = sources[i % len(sources)]
        crop = int(rng.integers(size // 2, min(src.shape) + 1))
        r, c = rng.integers(0, src.shape[0] - crop + 1), rng.integers(0, src.shape[1] - crop + 1)
        image = resize(src[r : r + crop, c : c + crop], (size, size), anti_aliasing=True)
        out[i] = np.clip(image + 0.02 * rng.standard_normal(image.shape), 0, 1)
    return out


@pytest.fixture(scope="module")
def image_sets():
    return {case: (sample_images(case[1], case[0], 1), sample_images(case[2], case[0], 2)) for case in CASES}


def flops_per_pair(size: int, win: int = 7) -> int:
    """Nominal float32 operations per pair of a direct separable evaluation of the fast phase: one product
    per pixel, then per valid pixel (win-1) vertical + (win-1) horizontal adds and 13 for the SSIM map
    (scale, 2 products, 2 fma, subtraction, 2 sums, 2 products, division, accumulation). A fixed yardstick:
    the AVX-512 kernel does fewer adds (window sums by pair sums), so this overstates its arithmetic."""
    valid = (size - win + 1) ** 2
    return size * size + valid * (2 * (win - 1) + 13)


def test_sgemm_peak(benchmark):
    torch.set_num_threads(THREADS)
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    torch.mm(a, b)
    benchmark.pedantic(torch.mm, args=(a, b), rounds=5, iterations=1)
    gflops = 2 * 2048**3 / benchmark.stats.stats.min / 1e9
    RESULTS[("sgemm", 0)] = gflops
    benchmark.extra_info.update(gflops=round(gflops, 1), threads=THREADS)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_skimage_loop(benchmark, image_sets, case):
    syn, real = image_sets[case]
    pairs = [(s, r) for s in range(len(syn)) for r in range(len(real))]
    syn64, real64 = syn.astype(np.float64), real.astype(np.float64)

    def loop():
        return max(structural_similarity(syn64[s], real64[r], data_range=1.0) for s, r in pairs)

    benchmark.pedantic(loop, rounds=1, iterations=1)
    rate = len(pairs) / benchmark.stats.stats.min
    RESULTS[("skimage", case)] = rate
    benchmark.extra_info.update(pairs=len(pairs), pairs_per_s=round(rate, 1))


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_torch_twin(benchmark, image_sets, case):
    torch.set_num_threads(THREADS)
    size = case[0]
    syn, real = image_sets[case]
    syn_t = torch.from_numpy(syn[: TWIN_SYNTHETIC[size], None])
    real_t = torch.from_numpy(real[:, None])
    win = ssim_window("uniform")
    weights = torch.from_numpy(win.weights)
    benchmark.pedantic(
        ssim_max_torch,
        args=(syn_t, real_t, weights, win.covariance_scale, win.c1, win.c2),
        rounds=1,
        iterations=1,
    )
    rate = syn_t.shape[0] * real_t.shape[0] / benchmark.stats.stats.min
    RESULTS[("torch", case)] = rate
    benchmark.extra_info.update(pairs=syn_t.shape[0] * real_t.shape[0], pairs_per_s=round(rate, 1))


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_ssim_max_cpp(benchmark, image_sets, case):
    size = case[0]
    syn, real = image_sets[case]
    ssim_max(syn[:2], real[:2])  # warm-up (thread pool, page faults)
    result = benchmark.pedantic(ssim_max, args=(syn, real), kwargs={"backend": "cpp"}, rounds=3, iterations=1)
    pairs = len(syn) * len(real)
    rate = pairs / benchmark.stats.stats.min
    info = {"pairs": pairs, "pairs_per_s": round(rate, 1), "threads": THREADS}
    if ("skimage", case) in RESULTS:
        info["x_skimage"] = round(rate / RESULTS[("skimage", case)], 1)
    if ("torch", case) in RESULTS:
        info["x_torch_twin"] = round(rate / RESULTS[("torch", case)], 1)
    gflops = rate * flops_per_pair(size) / 1e9
    info["gflops"] = round(gflops, 1)
    if ("sgemm", 0) in RESULTS:
        info["fraction_of_sgemm_peak"] = round(gflops / RESULTS[("sgemm", 0)], 3)
    benchmark.extra_info.update(info)
    RESULTS[("medsyn", case)] = rate
    assert result.values.shape == (len(syn),)


def main() -> None:
    """Print the same measurements as a table (best of 5 for medsyn and sgemm, 1 run for the references).
    Optional arguments pick cases by id, e.g. ``256px-32x256``. medsyn is timed first in each case: right
    after torch's multi-threaded twin and sgemm its OpenMP threads measured 10% slower (the other runtimes'
    idle threads still spin for a while)."""
    torch.set_num_threads(THREADS)
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    torch.mm(a, b)
    sgemm = max(2 * 2048**3 / timed(lambda: torch.mm(a, b)) / 1e9 for _ in range(5))
    print(f"threads={THREADS}  sgemm {sgemm:.1f} GFLOP/s")
    win = ssim_window("uniform")
    wanted = set(sys.argv[1:]) or set(CASE_IDS)
    for (size, q, n), case_id in zip(CASES, CASE_IDS):
        if case_id not in wanted:
            continue
        syn, real = sample_images(q, size, 1), sample_images(n, size, 2)
        ssim_max(syn[:2], real[:2])
        ms = q * n / min(timed(lambda: ssim_max(syn, real, backend="cpp")) for _ in range(5))
        pairs = [(s, r) for s in range(q) for r in range(n)]
        sk = len(pairs) / timed(
            lambda: [
                structural_similarity(syn[s].astype(float), real[r].astype(float), data_range=1.0)
                for s, r in pairs
            ]
        )
        k = TWIN_SYNTHETIC[size]
        syn_t, real_t = torch.from_numpy(syn[:k, None]), torch.from_numpy(real[:, None])
        weights = torch.from_numpy(win.weights)
        constants = (win.covariance_scale, win.c1, win.c2)
        tw = k * n / timed(lambda: ssim_max_torch(syn_t, real_t, weights, *constants))
        gflops = ms * flops_per_pair(size) / 1e9
        print(
            f"{size:4d}px {q:3d}x{n:<4d} medsyn {ms:9.0f} pairs/s  skimage {sk:7.0f}  torch twin {tw:7.0f}  "
            f"x{ms / sk:6.1f} vs skimage  x{ms / tw:5.1f} vs twin  {gflops:5.1f} GFLOP/s "
            f"({100 * gflops / sgemm:.0f}% of sgemm)"
        )


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
