"""Distance to closest record (paper 001 §3.2): the Euclidean distance of each synthetic image, and of each
held-out real image, to its nearest neighbour among the generator's TRAINING MEMBERS, and how the two
empirical distributions differ.

A generator that memorises puts synthetic images closer to training members than unseen real images
are, so the ECDF of synthetic distances rises faster than the holdout's. Reported: the exact two-sample
KS statistic and the area between the two ECDFs (both absolute, as in the paper; lower = closer to the
behaviour of fresh real data).

The reference set is always the training members: measuring against the holdout or the test split (a
known pitfall) compares the synthetic data with images the generator never saw and hides memorisation.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from medsyn.metrics.validation import as_feature_matrix, as_image_batch, check_same_dim, check_same_image_size

__all__ = ["distance_to_closest_record", "ecdf_points"]

# Exact copies have distance 0 up to float32 rounding of the distance kernel.
COPY_TOLERANCE = 1e-3


def ecdf_points(samples: np.ndarray) -> dict[str, list[float]]:
    """Right-continuous ECDF as step points for plotting: x sorted [n], y = (i+1)/n [n]."""
    x = np.sort(np.asarray(samples, dtype=np.float64))
    y = np.arange(1, x.shape[0] + 1, dtype=np.float64) / x.shape[0]
    return {"x": x.tolist(), "y": y.tolist()}


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
    syn = as_image_batch(synthetic, "synthetic")
    train = as_image_batch(train_members, "train_members")
    hold = as_image_batch(holdout, "holdout")
    check_same_image_size(syn, "synthetic", train, "train_members")
    check_same_image_size(hold, "holdout", train, "train_members")
    if space == "pixel":
        return syn.flatten(1), train.flatten(1), hold.flatten(1)
    from medsyn.metrics.features.extract import extract_features

    return tuple(extract_features(x, space, batch_size=batch_size, device=device) for x in (syn, train, hold))


def distance_to_closest_record(
    synthetic: Any,
    train_members: Any,
    holdout: Any,
    *,
    space: str = "pixel",
    batch_size: int = 64,
    device: str = "cpu",
) -> dict[str, Any]:
    """DCR of synthetic and holdout images to the training members, their ECDFs, KS and area.

    synthetic [m,C,H,W], train_members [n,C,H,W], holdout [h,C,H,W]: images in [0,1] with one size.
    space: "pixel" (flattened pixels), the name of a registered feature extractor (e.g. "effnet_lite0":
        images are turned into features first), or "features" (the three inputs are already feature
        matrices [*, D])
    returns: {"dcr_ks": {"value", ...}, "dcr_area": {"value", ...}, "space", "synthetic_distances" [m],
              "holdout_distances" [h], "synthetic_nearest_train_index" [m], "ecdf": {"synthetic": {x,y},
              "holdout": {x,y}}, "synthetic_copies" (count at distance ~0), "holdout_in_train" (count)}
    """
    if not isinstance(space, str) or not space:
        raise ValueError(f"space must be 'pixel', 'features' or a feature extractor name, got {space!r}")
    syn, train, hold = _to_space(synthetic, train_members, holdout, space, batch_size, device)

    from medsyn.metrics import ecdf_distance, nearest_neighbors

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
