"""Distance to closest record (paper 001 §3.2): the Euclidean distance of each synthetic image, and of each
held-out real image, to its nearest neighbour among the generator's TRAINING MEMBERS, and how the two
empirical distributions differ.

A generator that memorises puts synthetic images closer to training members than unseen real images
are, so the ECDF of synthetic distances rises faster than the holdout's. Reported: the exact two-sample
KS statistic and the area between the two ECDFs (both absolute, as in the paper; lower = closer to the
behaviour of fresh real data).

The reference set is always the training members: measuring against the holdout or the test split (a
known pitfall) compares the synthetic data with images the generator never saw and hides memorisation.

Paper-scale sets (8,000-54,309 images of 3x256x256) do not fit in memory as float32. When any of the three
sets is ``StoredImages`` (pixels in an image store on disk), the pixel-space scan is streamed: query images
(synthetic, then holdout) one block at a time, and for each block the training members one block at a time,
keeping a running minimum distance and its index per query, so memory holds two blocks of images
(``DCR_BLOCK_IMAGES``) and the kernel's working copies plus O(m + h) results. The distances are identical to
the in-memory scan: each is the exact distance of its pair (``nearest_neighbors``: the exact squared distance
of the float32 pixels rounded once to float64, then the square root; the power-of-two scaling it may apply to
a set of tiny values is exact), so it does not depend on the other images of the call; the minimum over blocks
is the minimum over the set, and a tie between blocks keeps the earlier block, i.e. the smallest training
index, which is ``nearest_neighbors``' own tie rule. Feature spaces need only the features in memory
(``extract_features`` reads StoredImages one batch at a time) and scan them at once.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from medsyn.data.stored_images import StoredImages, image_batches
from medsyn.metrics.validation import as_feature_matrix, as_image_batch, check_same_dim, check_same_image_size

__all__ = ["DCR_BLOCK_IMAGES", "distance_to_closest_record", "ecdf_points"]

# Exact copies have distance 0 up to float32 rounding of the distance kernel.
COPY_TOLERANCE = 1e-3

DCR_BLOCK_IMAGES = 256
"""Images per block of the streamed pixel-space scan (query and training blocks alike; used when a set is
StoredImages). At 3x256x256 a float32 block is 192 MiB; the scan holds a query block, a training block and the
k-NN kernel's working copies of them (about as much again): measured about 0.75 GiB above the memory before
the scan, the same for 300 and 700 training images (the pages of the memory-mapped stores that were read count
in RSS on top: file pages the kernel may drop)."""


def ecdf_points(samples: np.ndarray) -> dict[str, list[float]]:
    """Right-continuous ECDF as step points for plotting: x sorted [n], y = (i+1)/n [n]."""
    x = np.sort(np.asarray(samples, dtype=np.float64))
    y = np.arange(1, x.shape[0] + 1, dtype=np.float64) / x.shape[0]
    return {"x": x.tolist(), "y": y.tolist()}


def _image_sources(
    synthetic: Any, train_members: Any, holdout: Any
) -> tuple[torch.Tensor | StoredImages, torch.Tensor | StoredImages, torch.Tensor | StoredImages]:
    """The three image sets of one size: StoredImages as they are (their store checked every image, and
    the streamed scan checks each block it reads), anything else validated now as float32 [N,C,H,W]."""
    syn, train, hold = (
        images if isinstance(images, StoredImages) else as_image_batch(images, name)
        for images, name in ((synthetic, "synthetic"), (train_members, "train_members"), (holdout, "holdout"))
    )
    check_same_image_size(syn, "synthetic", train, "train_members")
    check_same_image_size(hold, "holdout", train, "train_members")
    return syn, train, hold


def _to_space(
    synthetic: Any, train_members: Any, holdout: Any, space: str, batch_size: int, device: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    if space == "features":
        # float64 kept: nearest_neighbors scales to float32 itself (features beyond float32's range too)
        syn = as_feature_matrix(synthetic, "synthetic", dtype=None)
        train = as_feature_matrix(train_members, "train_members", dtype=None)
        hold = as_feature_matrix(holdout, "holdout", dtype=None)
        check_same_dim(syn, "synthetic", train, "train_members")
        check_same_dim(hold, "holdout", train, "train_members")
        return syn, train, hold
    syn, train, hold = _image_sources(synthetic, train_members, holdout)
    if space == "pixel":
        return syn.flatten(1), train.flatten(1), hold.flatten(1)
    from medsyn.metrics.features.extract import extract_features

    return tuple(extract_features(x, space, batch_size=batch_size, device=device) for x in (syn, train, hold))


def _streamed_pixel_nearest(
    queries: torch.Tensor | StoredImages, name: str, train: torch.Tensor | StoredImages, block_images: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel-space distance of every query image to its nearest training member and that member's index,
    two blocks of images at a time (module doc): (float64 [q], int64 [q])."""
    from medsyn.metrics import nearest_neighbors

    distances, indices = [], []
    for query_block in image_batches(queries, block_images):
        query_rows = as_image_batch(query_block, name).flatten(1)
        best_distances = best_indices = None
        first_member = 0
        for train_block in image_batches(train, block_images):
            block_distances, block_indices = nearest_neighbors(
                query_rows, as_image_batch(train_block, "train_members").flatten(1)
            )
            block_distances, block_indices = block_distances.cpu(), block_indices.cpu() + first_member
            if best_distances is None:
                best_distances, best_indices = block_distances, block_indices
            else:  # strictly closer wins: a tie keeps the earlier block's, i.e. smaller, training index
                closer = block_distances < best_distances
                best_distances = torch.where(closer, block_distances, best_distances)
                best_indices = torch.where(closer, block_indices, best_indices)
            first_member += train_block.shape[0]
            del train_block  # freed before the next block is read: one training block in memory, not two
        distances.append(best_distances)
        indices.append(best_indices)
    return torch.cat(distances), torch.cat(indices)


def distance_to_closest_record(
    synthetic: Any,
    train_members: Any,
    holdout: Any,
    *,
    space: str = "pixel",
    batch_size: int = 64,
    device: str = "cpu",
    block_images: int = DCR_BLOCK_IMAGES,
) -> dict[str, Any]:
    """DCR of synthetic and holdout images to the training members, their ECDFs, KS and area.

    synthetic [m,C,H,W], train_members [n,C,H,W], holdout [h,C,H,W]: images in [0,1] with one size
        (tensors, arrays or StoredImages).
    space: "pixel" (flattened pixels), the name of a registered feature extractor (e.g. "effnet_lite0":
        images are turned into features first), or "features" (the three inputs are already feature
        matrices [*, D])
    batch_size, device: images per forward pass and device of the feature extractor
    block_images: images per block of the streamed pixel-space scan, used when a set is StoredImages
        (module doc; the result does not depend on it)
    returns: {"dcr_ks": {"value", ...}, "dcr_area": {"value", ...}, "space", "synthetic_distances" [m],
              "holdout_distances" [h], "synthetic_nearest_train_index" [m], "ecdf": {"synthetic": {x,y},
              "holdout": {x,y}}, "synthetic_copies" (count at distance ~0), "holdout_in_train" (count)}
    """
    if not isinstance(space, str) or not space:
        raise ValueError(f"space must be 'pixel', 'features' or a feature extractor name, got {space!r}")
    if isinstance(block_images, bool) or not isinstance(block_images, (int, np.integer)) or block_images < 1:
        raise ValueError(f"block_images must be a positive integer, got {block_images!r}")
    from medsyn.metrics import ecdf_distance, nearest_neighbors

    if space == "pixel" and any(isinstance(x, StoredImages) for x in (synthetic, train_members, holdout)):
        syn, train, hold = _image_sources(synthetic, train_members, holdout)
        syn_distances, syn_nearest = _streamed_pixel_nearest(syn, "synthetic", train, int(block_images))
        hold_distances, _ = _streamed_pixel_nearest(hold, "holdout", train, int(block_images))
    else:
        syn, train, hold = _to_space(synthetic, train_members, holdout, space, batch_size, device)
        syn_distances, syn_nearest = nearest_neighbors(syn, train)
        hold_distances, _ = nearest_neighbors(hold, train)
    syn_d = syn_distances.detach().cpu().double().numpy()
    hold_d = hold_distances.detach().cpu().double().numpy()
    ks, area = ecdf_distance(syn_d, hold_d)
    pooled = np.concatenate([syn_d, hold_d])
    spread = float(pooled.max() - pooled.min())
    meta = {"space": space, "n_synthetic": int(syn_d.shape[0]), "n_holdout": int(hold_d.shape[0]),
            "n_train_members": int(train.shape[0]), "reference": "generator training members"}
    return {
        "dcr_ks": {"value": float(ks), **meta},
        # area between the ECDFs = 1-Wasserstein distance, in distance units; normalised by the pooled
        # range so that pixel and feature spaces can be put on one [0, 1] scale as in paper 001 Fig. 11
        "dcr_area": {"value": float(area), "normalised": float(area / spread) if spread > 0 else 0.0, **meta},
        "space": space,
        "synthetic_distances": syn_d.tolist(),
        "holdout_distances": hold_d.tolist(),
        "synthetic_nearest_train_index": syn_nearest.detach().cpu().long().tolist(),
        "synthetic_median_distance": float(np.median(syn_d)),
        "holdout_median_distance": float(np.median(hold_d)),
        "ecdf": {"synthetic": ecdf_points(syn_d), "holdout": ecdf_points(hold_d)},
        "synthetic_copies": int((syn_d <= COPY_TOLERANCE).sum()),
        "holdout_in_train": int((hold_d <= COPY_TOLERANCE).sum()),
    }
