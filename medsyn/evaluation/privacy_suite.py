"""The privacy suite of one synthetic set for one seed (paper 000 §4.1.6, 001 §3.2).

References are the generator's actual training members (the real training split); the DCR holdout is the
real test split, never seen by a generator.

- SSIM-max: the paper protocol (q synthetic images, l repetitions) and the full scan;
- DCR in pixel space and, when a feature space is set, in that space: ECDF KS distance and area between
  synthetic->members and holdout->members;
- empirical epsilon (generator sets only): the victim is the seed's trained generator; one ablated generator
  per query is trained on the training split minus the query (checkpoint named by the neighbouring set, so a
  re-run resumes it); kNN density ratio in an Isomap embedding of the real training split.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from medsyn.data.image_set import ImageSet

__all__ = ["dcr_scores", "empirical_epsilon_of_generator", "ssim_max_scores"]


def ssim_max_scores(synthetic: torch.Tensor, train: torch.Tensor, *, q: int, repeats: int,
                    seed: int) -> tuple[dict[str, float], dict[str, Any]]:
    """({"ssim_max_paper", "ssim_max_full"}, the full ``ssim_max_privacy`` result for the gallery)."""
    from medsyn.metrics.privacy import ssim_max_privacy

    result = ssim_max_privacy(synthetic, train, q=q, repeats=repeats, seed=seed)
    return {"ssim_max_paper": result["ssim_max_paper"]["value"],
            "ssim_max_full": result["ssim_max_full"]["value"]}, result


def dcr_scores(spaces: Mapping[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]
               ) -> tuple[dict[str, dict[str, float]], dict[str, Any]]:
    """spaces: name -> (synthetic, members, holdout) in that space ("pixel": images; else features).
    Returns ({"dcr_ks": {space: v}, "dcr_area": {space: v}}, space -> full DCR result for the ECDF figure)."""
    from medsyn.metrics.privacy import distance_to_closest_record

    results = {
        name: distance_to_closest_record(synthetic, members, holdout, space="pixel" if name == "pixel" else "features")
        for name, (synthetic, members, holdout) in spaces.items()
    }
    scores = {"dcr_ks": {name: r["dcr_ks"]["value"] for name, r in results.items()},
              "dcr_area": {name: r["dcr_area"]["value"] for name, r in results.items()}}
    return scores, results


def empirical_epsilon_of_generator(
    victim: Any,
    build_generator: Callable[[], Any],
    train: ImageSet,
    *,
    seed: int,
    query_indices: list[int],
    settings: Mapping[str, Any],
    run_dir: Path,
    sampling_seed: int,
    progress: bool,
) -> dict[str, Any]:
    """Paper 001 §3.2 for one seed: ``victim`` is the generator trained on ``train`` with ``seed``; each
    query's ablated twin (``build_generator()``, fit with the same seed) trains on ``train`` minus the query
    into ``run_dir / "ablated_<hash of the neighbouring set>.pt"``. Both sample ``settings["samples_per_class"]``
    images per class with ``sampling_seed``. Returns ``run_empirical_epsilon_experiment``'s result."""
    from medsyn.metrics.privacy import run_empirical_epsilon_experiment

    def train_fn(train_set: ImageSet, fit_seed: int) -> Any:
        if train_set is train:
            return victim
        digest = hashlib.sha1(train_set.source.encode("utf-8")).hexdigest()[:12]
        generator = build_generator()
        generator.fit(train_set, run_dir / f"ablated_{digest}.pt", seed=fit_seed, progress=progress)
        return generator

    options = {key: settings[key] for key in ("k", "n_components", "isomap_neighbors")}
    return run_empirical_epsilon_experiment(train, train_fn, query_indices=query_indices, seeds=[seed],
                                            sampling_seeds=[sampling_seed],
                                            samples_per_class=settings["samples_per_class"], **options)
