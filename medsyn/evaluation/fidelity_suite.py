"""The fidelity suite of one synthetic set for one seed (paper 000 §4.1.1-4.1.2, 001 §3.3).

- per feature space: precision, recall, density, coverage (k nearest neighbours), FID and, when asked, KID,
  comparing the 1x synthetic subset (as many images per class as the real training split) with the real
  training split, so the set sizes are equal;
- the Inception Score of the 1x subset from p(y|x) of the seed's Baseline Real classifier (the data set's
  own classes; torch-fidelity's split protocol);
- PSNR / SSIM on true pairs for generators with ``reconstruct(images, labels)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

__all__ = ["FIDELITY_METRICS", "fidelity_scores", "inception_score_of", "true_pair_scores"]

FIDELITY_METRICS = ("precision", "recall", "density", "coverage", "fid", "kid")


def fidelity_scores(real: torch.Tensor, synthetic: torch.Tensor, *, metrics: Sequence[str], k: int,
                    kid: Mapping[str, Any] | None, seed: int) -> dict[str, float]:
    """real, synthetic: feature matrices [N, D]; metrics: a subset of FIDELITY_METRICS (in that order);
    kid: {"subsets", "subset_size"} when "kid" is asked for."""
    from medsyn.metrics.fid import fid
    from medsyn.metrics.kid import kid as kid_of
    from medsyn.metrics.prdc import prdc

    unknown = sorted(set(metrics) - set(FIDELITY_METRICS))
    if unknown:
        raise ValueError(f"unknown fidelity metric(s) {unknown}; known: {list(FIDELITY_METRICS)}")
    scores: dict[str, float] = {}
    manifold_keys = [key for key in ("precision", "recall", "density", "coverage") if key in metrics]
    if manifold_keys:
        manifold = prdc(real, synthetic, k=k)
        scores.update({key: float(manifold[key]) for key in manifold_keys})
    if "fid" in metrics:
        scores["fid"] = float(fid(real, synthetic))
    if "kid" in metrics:
        if kid is None:
            raise ValueError("kid settings {'subsets', 'subset_size'} are needed for the kid metric")
        scores["kid"] = kid_of(real, synthetic, subsets=kid["subsets"], subset_size=kid["subset_size"], seed=seed)[0]
    return scores


def inception_score_of(classifier: torch.nn.Module, images: torch.Tensor) -> float:
    """IS of ``images`` from the softmax of ``classifier`` (splits as torch-fidelity, at most one per image)."""
    from medsyn.metrics.inception_score import IS_SPLITS, inception_score
    from medsyn.models.classifier_training import predict_logits

    probabilities = predict_logits(classifier, images).softmax(dim=1)
    return inception_score(probabilities, splits=min(IS_SPLITS, len(images)))[0]


def true_pair_scores(generator: Any, real: Any) -> dict[str, float] | None:
    """Mean PSNR and SSIM of ``real`` (an ImageSet) against ``generator.reconstruct(images, labels)``; None
    when the generator has no ``reconstruct`` method (no true pairs exist)."""
    from medsyn.metrics.true_pairs import true_pair_psnr_ssim

    reconstruct = getattr(generator, "reconstruct", None)
    if generator is None or not callable(reconstruct):
        return None
    return true_pair_psnr_ssim(real.images, reconstruct(real.images, real.labels))
