"""Privacy by SSIM-max (paper 000 §4.1.6, after Akbar et al.): P_j = max over the real TRAINING images r_i of
SSIM(s_j, r_i); P(G) = (1/l) sum over l repetitions of the mean P_j over q randomly drawn synthetic images
(q = 100, l = 10 in the paper; lower = more private).

Two numbers are reported:

- ``ssim_max_paper``: the protocol exactly as published (q images drawn without replacement inside each
  repetition, repetitions independent, seeded; all synthetic images when there are fewer than q);
- ``ssim_max_full``: the scan of every synthetic image (mean, median, max), which the compiled kernel
  makes affordable, plus the per-image values and the index of the most similar training image (the
  input of the privacy gallery).

``scan="paper"`` scans only the synthetic images the protocol draws (at most q x l, 1,000 with the paper's
values) and reports ``ssim_max_paper`` alone, identical to the full scan's: P_j depends only on s_j and the
training set. The full scan costs m x n pairs: at paper scale (24,000 synthetic x 6,400 training images of
3 x 256 x 256) about 154 million, some 7 hours on 2 CPU cores at the measured ~6,000 pairs/s
(benchmarks/README.md), where the drawn images take a few minutes; on a GPU the full scan is affordable.

Paper-scale sets (8,000-54,309 images of 3x256x256) do not fit in memory as float32. When either set is
``StoredImages`` (pixels in an image store on disk) the full scan is streamed: synthetic images one block at a
time, and for each block the training set one block at a time, keeping a running max and argmax per synthetic
image, so memory holds two blocks of images (``SSIM_MAX_BLOCK_IMAGES``) and the kernel's scratch plus O(m)
results, whatever m and n. The result is identical to the in-memory scan: every pair's value is the kernel's
float64 SSIM of that pair alone (it does not depend on the other images of the call), the max over blocks of
those values is the max over the set, and a tie between blocks keeps the earlier block, i.e. the smallest
training index, which is the kernel's own tie rule within a block. Tensors and arrays are scanned in one call,
as before.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from medsyn.data.stored_images import StoredImages, image_batches
from medsyn.metrics.validation import as_image_batch, check_same_image_size

__all__ = ["ssim_max_privacy", "PAPER_Q", "PAPER_REPEATS", "SCANS", "SSIM_MAX_BLOCK_IMAGES"]

SCANS = ("full", "paper")
"""What ``ssim_max_privacy`` scans: every synthetic image, or only those the paper protocol draws."""

# Paper 000 §4.1.6: "we limited the analysis to 100 synthetic images ... repeated this extraction 10 times".
PAPER_Q = 100
PAPER_REPEATS = 10

SSIM_MAX_BLOCK_IMAGES = 256
"""Images per block of the streamed scan (synthetic and training blocks alike; used when a set is
StoredImages). At 3x256x256 a float32 block is 192 MiB; the scan holds a synthetic block, a training block and
the kernel's statistics of the synthetic block (about one block more): measured about 0.6 GiB above the memory
before the scan, the same for 300 and 700 training images (the pages of the memory-mapped stores that were
read count in RSS on top: file pages the kernel may drop)."""


def _image_source(images: Any, name: str, data_range: float) -> torch.Tensor | StoredImages:
    """StoredImages as they are (each block is validated by ``ssim_max`` when it is read); anything else
    validated now as one float32 [N,C,H,W] batch."""
    return images if isinstance(images, StoredImages) else as_image_batch(images, name, data_range=data_range)


def _check_block_images(block_images: Any) -> int:
    if isinstance(block_images, bool) or not isinstance(block_images, (int, np.integer)) or block_images < 1:
        raise ValueError(f"block_images must be a positive integer, got {block_images!r}")
    return int(block_images)


def _streamed_ssim_max(
    synthetic: torch.Tensor | StoredImages,
    real_train: torch.Tensor | StoredImages,
    block_images: int,
    **ssim_options: Any,
) -> tuple[torch.Tensor, torch.Tensor, str]:
    """Max SSIM and its training index for every synthetic image, two blocks of images at a time (module
    doc): (values float64 [m], indices int64 [m], the backend that ran)."""
    from medsyn.metrics.ssim import ssim_max

    values, indices = [], []
    backend = ""
    for synthetic_block in image_batches(synthetic, block_images):
        best_values = best_indices = None
        first_real = 0
        for real_block in image_batches(real_train, block_images):
            result = ssim_max(synthetic_block, real_block, **ssim_options)
            block_values = result.values.cpu().double()
            block_indices = result.indices.cpu().long() + first_real
            if best_values is None:
                best_values, best_indices = block_values, block_indices
            else:  # strictly larger wins: a tie keeps the earlier block's, i.e. smaller, training index
                larger = block_values > best_values
                best_values = torch.where(larger, block_values, best_values)
                best_indices = torch.where(larger, block_indices, best_indices)
            first_real += real_block.shape[0]
            backend = result.backend
            del real_block  # freed before the next block is read: one training block in memory, not two
        values.append(best_values)
        indices.append(best_indices)
    return torch.cat(values), torch.cat(indices), backend


def ssim_max_privacy(
    synthetic: Any,
    real_train: Any,
    *,
    q: int = PAPER_Q,
    repeats: int = PAPER_REPEATS,
    seed: int = 0,
    window: str = "uniform",
    win_size: int | None = None,
    data_range: float = 1.0,
    backend: str = "auto",
    block_images: int = SSIM_MAX_BLOCK_IMAGES,
    scan: str = "full",
) -> dict[str, Any]:
    """SSIM-max privacy of a synthetic set against the generator's real training members.

    synthetic: images [m,C,H,W] (or [m,H,W]) in [0, data_range], or StoredImages
    real_train: images [n,C,H,W] in [0, data_range], or StoredImages: the generator's training members
        (never holdout/test)
    q: synthetic images per repetition (all m when m < q); repeats: l; seed: drives the draws
    window, win_size, data_range, backend: passed to ``medsyn.metrics.ssim_max``
    block_images: images per block of the streamed scan, used when either set is StoredImages (module doc;
        the result does not depend on it)
    scan: "full" (every synthetic image) or "paper" (only the drawn ones; no "ssim_max_full"; module doc)
    returns: {"ssim_max_paper": {"value", "per_repetition", "q", "repeats", "seed", ...},
              "ssim_max_full": {"value" (mean), "median", "max", "n_synthetic", "n_real"} (scan "full" only),
              "scanned_indices": [s] ints (the synthetic images scanned: all m, or the drawn ones ascending),
              "per_image_values": [s] floats, "per_image_indices": [s] ints (argmax real image), per scanned image}
    """
    if scan not in SCANS:
        raise ValueError(f"scan must be one of {list(SCANS)}, got {scan!r}")
    for name, value in (("q", q), ("repeats", repeats)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    block_images = _check_block_images(block_images)
    synthetic_images = _image_source(synthetic, "synthetic", data_range)
    real_images = _image_source(real_train, "real_train", data_range)
    check_same_image_size(synthetic_images, "synthetic", real_images, "real_train")

    from medsyn.metrics.ssim import ssim_max

    # P_j depends only on s_j and the (fixed) training set, not on which repetition drew s_j: computing
    # it once for every synthetic image and indexing it per repetition gives exactly the values the
    # paper's repeated scans would, at 1/l of the cost (and the full scan comes for free).
    ssim_options = {"window": window, "win_size": win_size, "data_range": data_range, "backend": backend}
    m = int(synthetic_images.shape[0])
    draws = _paper_draws(m, int(q), int(repeats), int(seed))
    scanned = np.arange(m) if scan == "full" else np.unique(np.concatenate(draws))
    if scan == "paper":  # only the drawn images (StoredImages: a view of them, read block by block)
        synthetic_images = (synthetic_images.take(scanned) if isinstance(synthetic_images, StoredImages)
                            else synthetic_images[torch.as_tensor(scanned, dtype=torch.long)])
    if isinstance(synthetic_images, StoredImages) or isinstance(real_images, StoredImages):
        value_tensor, index_tensor, backend_used = _streamed_ssim_max(
            synthetic_images, real_images, block_images, **ssim_options
        )
    else:
        result = ssim_max(synthetic_images, real_images, **ssim_options)
        value_tensor, index_tensor, backend_used = result.values, result.indices, result.backend
    values = value_tensor.detach().cpu().numpy().astype(np.float64)
    indices = index_tensor.detach().cpu().numpy().astype(np.int64)

    common = {"window": window, "win_size": win_size, "data_range": float(data_range), "backend": backend_used,
              "scan": scan}
    return _protocol_result(values, indices, scanned, draws, n_real=int(real_images.shape[0]), q=int(q),
                            seed=int(seed), common=common)


def _paper_draws(m: int, q: int, repeats: int, seed: int) -> list[np.ndarray]:
    """The synthetic indices of each repetition: min(q, m) without replacement, repetitions independent."""
    rng = np.random.default_rng(seed)
    return [rng.choice(m, size=min(q, m), replace=False) for _ in range(repeats)]


def _protocol_result(values: np.ndarray, indices: np.ndarray, scanned: np.ndarray, draws: list[np.ndarray], *,
                     n_real: int, q: int, seed: int, common: dict[str, Any]) -> dict[str, Any]:
    """The paper protocol over the per-image maxima ``values`` of the ``scanned`` images, and the result."""
    position = {int(image): row for row, image in enumerate(scanned)}
    per_repetition = [float(values[[position[int(image)] for image in chosen]].mean()) for chosen in draws]
    drawn = [chosen.tolist() for chosen in draws]
    q_used, repeats, m = len(draws[0]), len(draws), int(scanned.shape[0])
    result = {
        "ssim_max_paper": {
            "value": float(np.mean(per_repetition)),
            "per_repetition": per_repetition,
            "std_over_repetitions": float(np.std(per_repetition)),
            "q": q_used,
            "q_requested": q,
            "repeats": repeats,
            "seed": seed,
            "drawn_indices": drawn,
            "protocol": "paper 000 §4.1.6: mean over l repetitions of the mean max-SSIM of q random synthetic images",
            **common,
        },
        "scanned_indices": scanned.tolist(),
        "per_image_values": values.tolist(),
        "per_image_indices": indices.tolist(),
    }
    if common["scan"] == "full":
        result["ssim_max_full"] = {
            "value": float(values.mean()),
            "median": float(np.median(values)),
            "max": float(values.max()),
            "n_synthetic": m,
            "n_real": n_real,
            "protocol": "every synthetic image against every real training image",
            **common,
        }
    return result
