"""The privacy suite of one synthetic set for one seed (paper 000 §4.1.6, 001 §3.2).

References are the generator's actual training members (the real training split); the DCR holdout is the
real test split, never seen by a generator.

- SSIM-max: the paper protocol (q synthetic images, l repetitions) and the full scan;
- DCR in pixel space and, when a feature space is set, in that space: ECDF KS distance and area between
  synthetic->members and holdout->members;
- empirical epsilon (generator sets only): paper 001's neighbouring sets (a victim per query on the training
  split without the query's class except the query, an ablated twin without that class; checkpoints named by
  the neighbouring set, so a re-run resumes them); signed kNN density ratio in an Isomap embedding of a capped
  subsample of the real training split, worst and mean over queries, paper-code and with-d conventions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from medsyn.data.image_set import ImageSet
from medsyn.evaluation.stage_costs import StageCosts

__all__ = ["dcr_scores", "empirical_epsilon_of_generator", "ssim_max_scores"]


def ssim_max_scores(synthetic: torch.Tensor, train: torch.Tensor, *, q: int, repeats: int,
                    seed: int, scan: str = "full") -> tuple[dict[str, float], dict[str, Any]]:
    """({"ssim_max_paper", "ssim_max_full" (scan "full" only)}, the ``ssim_max_privacy`` result for the gallery)."""
    from medsyn.metrics.privacy import ssim_max_privacy

    result = ssim_max_privacy(synthetic, train, q=q, repeats=repeats, seed=seed, scan=scan)
    scores = {"ssim_max_paper": result["ssim_max_paper"]["value"]}
    if "ssim_max_full" in result:
        scores["ssim_max_full"] = result["ssim_max_full"]["value"]
    return scores, result


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
    build_generator: Callable[[], Any],
    train: ImageSet,
    *,
    seed: int,
    settings: Mapping[str, Any],
    run_dir: Path,
    sampling_seed: int,
    progress: bool,
    costs: StageCosts | None = None,
) -> tuple[dict[str, float], dict[str, Any]]:
    """Paper 001 §3.2 for one seed. ``settings``: the [privacy.empirical_epsilon] section (n_queries,
    query_class, samples_per_class, k, n_components, isomap_neighbors, isomap_per_class, isomap_noise_sigmas).

    The queries are ``minority_class_queries`` of ``train`` (drawn with ``seed``); per query a victim trains on
    ``train`` without the query's class except the query, and one ablated generator per query class on
    ``train`` without that class (``build_generator()``, fit with ``seed`` into ``run_dir /
    "<victim_q<i> | ablated_c<c>>_<hash of the set>.pt"``, so a re-run resumes them); both sample
    ``samples_per_class`` images per class with ``sampling_seed``. The generator assessed elsewhere (trained on
    all of ``train``) is not one of them. ``costs`` gets the stages "privacy: empirical epsilon (victim and
    ablated generators)" and "privacy: empirical epsilon (Isomap fit, kNN)".

    Returns ({RESULT_NAMES: value}, the ``empirical_epsilon`` result, its summary also holding "query_class"
    and "query_class_from")."""
    from medsyn.metrics.privacy.empirical_epsilon import (
        RESULT_NAMES,
        empirical_epsilon,
        minority_class_queries,
        query_class_of,
        train_neighbouring_generators,
    )

    costs = costs if costs is not None else StageCosts()
    query_class, chosen_by = query_class_of(train.labels, train.source, settings["query_class"])
    query_indices = minority_class_queries(train.labels, settings["n_queries"], seed=seed, query_class=query_class)

    def train_fn(neighbour: ImageSet, fit_seed: int, name: str) -> Any:
        digest = hashlib.sha1(neighbour.source.encode("utf-8")).hexdigest()[:12]
        generator = build_generator()
        generator.fit(neighbour, run_dir / f"{name}_{digest}.pt", seed=fit_seed, progress=progress)
        return generator

    with costs.stage("privacy: empirical epsilon (victim and ablated generators)"):
        trials = train_neighbouring_generators(train, train_fn, query_indices=query_indices, seed=seed,
                                               samples_per_class=settings["samples_per_class"],
                                               sampling_seed=sampling_seed)
    with costs.stage("privacy: empirical epsilon (Isomap fit, kNN)"):
        result = empirical_epsilon(
            train.images, train.labels, torch.stack([trial["query"] for trial in trials]),
            [trial["victim"] for trial in trials], [trial["ablated"] for trial in trials],
            k=settings["k"], n_components=settings["n_components"], isomap_neighbors=settings["isomap_neighbors"],
            isomap_per_class=settings["isomap_per_class"], isomap_noise_sigmas=settings["isomap_noise_sigmas"],
            seed=seed, trial_labels=[f"query={trial['query_index']}" for trial in trials])
    summary = result["empirical_epsilon"]
    summary.update({"query_indices": query_indices, "query_class": query_class, "query_class_from": chosen_by,
                    "victim_size": len(trials[0]["victim_indices"]), "ablated_size": len(trials[0]["ablated_indices"]),
                    "samples_per_class": int(settings["samples_per_class"])})
    scores = {name: summary[f"{statistic}_{convention}"] for (statistic, convention), name in RESULT_NAMES.items()}
    return scores, result
