"""Privacy gallery (issue 5, 3d): the synthetic images with the highest max-SSIM, each with the real
training image it is most similar to, so a reader can judge by eye whether the closest pairs are copies.
The figure is drawn by ``medsyn.report.privacy_figures.save_privacy_gallery``.

Only the ``top`` pairs are read: sets given as ``StoredImages`` (pixels on disk, paper-scale sets) are
indexed at those images, never loaded whole."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from medsyn.data.stored_images import StoredImages
from medsyn.metrics.validation import as_image_batch, check_same_image_size

__all__ = ["privacy_gallery"]


def _per_image(ssim_result: Any, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(synthetic indices scanned, their max-SSIM, the index of their most similar training image)."""
    if isinstance(ssim_result, dict) and "per_image_values" in ssim_result:
        values, indices = ssim_result["per_image_values"], ssim_result["per_image_indices"]
        scanned = ssim_result.get("scanned_indices")  # scan "paper": the drawn images only
    elif hasattr(ssim_result, "values") and hasattr(ssim_result, "indices"):
        values, indices = ssim_result.values.detach().cpu().numpy(), ssim_result.indices.detach().cpu().numpy()
        scanned = None
    else:
        raise ValueError(
            "ssim_result must be the dict returned by ssim_max_privacy or an SSIMMaxResult, "
            f"got {type(ssim_result).__name__}"
        )
    values, indices = np.asarray(values, dtype=np.float64), np.asarray(indices, dtype=np.int64)
    scanned = np.arange(len(values)) if scanned is None else np.asarray(scanned, dtype=np.int64)
    every_image = ssim_result.get("scanned_indices") is None if isinstance(ssim_result, dict) else True
    if (values.shape != scanned.shape or indices.shape != values.shape or (every_image and len(values) != m)
            or (scanned.size and (scanned.min() < 0 or scanned.max() >= m))):
        raise ValueError(
            f"ssim_result holds {values.shape[0]} values but synthetic has {m} images: "
            "pass the result computed on these images"
        )
    return scanned, values, indices


def _image_source(images: Any, name: str) -> torch.Tensor | StoredImages:
    """StoredImages as they are (their store checked every image), anything else validated now."""
    return images if isinstance(images, StoredImages) else as_image_batch(images, name)


def privacy_gallery(synthetic: Any, real_train: Any, ssim_result: Any, top: int = 16) -> dict[str, Any]:
    """The ``top`` synthetic images with the highest max-SSIM and their most similar training images.

    synthetic [m,C,H,W], real_train [n,C,H,W] in [0,1] (tensors, arrays or StoredImages): the sets
        ``ssim_result`` was computed on
    ssim_result: dict from :func:`ssim_max_privacy` (either scan; with scan "paper" the gallery is of the drawn
        images) or an ``SSIMMaxResult``
    top: pairs to show (all m when m < top)
    returns: {"synthetic_indices": [t], "real_indices": [t], "values": [t] (descending),
              "synthetic_images": float32 [t,C,H,W], "real_images": float32 [t,C,H,W]}
    """
    if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or top < 1:
        raise ValueError(f"top must be a positive integer, got {top!r}")
    synthetic_t = _image_source(synthetic, "synthetic")
    real_t = _image_source(real_train, "real_train")
    check_same_image_size(synthetic_t, "synthetic", real_t, "real_train")
    scanned, values, indices = _per_image(ssim_result, int(synthetic_t.shape[0]))
    if indices.min() < 0 or indices.max() >= real_t.shape[0]:
        raise ValueError(f"ssim_result indices must lie in [0, {real_t.shape[0]}) (real_train), got {indices.min()}..{indices.max()}")
    order = np.argsort(-values, kind="stable")[: int(top)]  # highest similarity first; ties keep index order
    real_order = indices[order]
    synthetic_order = scanned[order]
    return {
        "synthetic_indices": synthetic_order.tolist(),
        "real_indices": real_order.tolist(),
        "values": values[order].tolist(),
        # indexing StoredImages reads only these images
        "synthetic_images": synthetic_t[torch.as_tensor(synthetic_order, dtype=torch.long)].cpu().numpy(),
        "real_images": real_t[torch.as_tensor(real_order, dtype=torch.long)].cpu().numpy(),
    }
