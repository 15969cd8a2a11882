"""The fidelity suite of one synthetic set for one seed (paper 000 §4.1.1-4.1.2, 001 §3.3).

- per feature space: precision, recall, density, coverage (k nearest neighbours), FID and, when asked, KID,
  comparing the 1x synthetic subset (as many images per class as the real training split) with the real
  training split, so the set sizes are equal;
- the Inception Score of the 1x subset from p(y|x) of the seed's Baseline Real classifier (the data set's
  own classes; torch-fidelity's split protocol);
- PSNR / SSIM (and LPIPS) of the real test split against the generator's reconstructions of it, for
  generators with ``reconstruct(images, labels)`` ("true_pairs": a reconstruction error);
- paper 001's set-level PSNR / SSIM (and LPIPS) of the real test split (X_h) against as many synthetic images
  of each class, paired class by class with no correspondence ("unpaired_set": a similarity of two sets);
- LPIPS in both when the vgg16 extractor has a weights file (``fidelity.vgg16_weights``, its backbone) and the
  lpips package's linear layers are installed; otherwise :func:`lpips_network_of` says why not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

__all__ = [
    "FIDELITY_METRICS",
    "fidelity_scores",
    "inception_score_of",
    "lpips_network_of",
    "true_pair_scores",
    "unpaired_set_scores",
]

FIDELITY_METRICS = ("precision", "recall", "density", "coverage", "fid", "kid")


def fidelity_scores(real: torch.Tensor, synthetic: torch.Tensor, *, metrics: Sequence[str], k: int,
                    kid: Mapping[str, Any] | None, seed: int, standardise: bool = False) -> dict[str, float]:
    """real, synthetic: feature matrices [N, D], real = the real training split's; metrics: a subset of
    FIDELITY_METRICS (in that order); kid: {"subsets", "subset_size"} when "kid" is asked for; standardise:
    FID and KID on features standardised with the real training features' mean/std only
    (``medsyn.metrics.feature_standardisation``; issue 14 item 6), PRDC always on the features as given."""
    from medsyn.metrics.feature_standardisation import FeatureScale
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
    if standardise and ("fid" in metrics or "kid" in metrics):
        scale = FeatureScale.of(real, "real_features")
        real, synthetic = scale.apply(real, "real_features"), scale.apply(synthetic, "synthetic_features")
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


def lpips_network_of(spaces: Any, image_shape: tuple[int, int, int]) -> tuple[Any, str | None]:
    """(LPIPS network, None) on the convolutions of the run's vgg16 extractor (``spaces.objects["vgg16"]``,
    loaded from ``fidelity.vgg16_weights``) and the lpips package's linear layers; (None, why) when there is
    no such extractor, the lpips package is not installed, or the images (C,H,W) are too small for VGG16."""
    from medsyn.metrics.lpips import MIN_IMAGE_SIZE, lpips_linear_layers_file, lpips_vgg16_of

    spec = spaces.objects.get("vgg16")
    if spec is None:
        return None, ("skipped: LPIPS uses the VGG16 backbone of the vgg16 extractor and fidelity.vgg16_weights "
                      "is not set (the torchvision-format VGG16 weights file; nothing is downloaded)")
    if min(image_shape[1:]) < MIN_IMAGE_SIZE:
        return None, (f"skipped: LPIPS (VGG16) needs images of at least {MIN_IMAGE_SIZE}x{MIN_IMAGE_SIZE}, "
                      f"these are {image_shape[1]}x{image_shape[2]}")
    try:
        linear_layers = lpips_linear_layers_file()
    except FileNotFoundError as error:
        return None, f"skipped: {error}"
    return lpips_vgg16_of(spec.build(), linear_layers), None


def true_pair_scores(generator: Any, real: Any, *, lpips: Any = None) -> dict[str, float] | None:
    """Mean PSNR and SSIM (and LPIPS with an ``lpips`` network) of ``real`` (an ImageSet) against
    ``generator.reconstruct(images, labels)``; None when the generator has no ``reconstruct`` method (no
    true pairs exist)."""
    from medsyn.metrics.true_pairs import score_true_pairs

    reconstruct = getattr(generator, "reconstruct", None)
    if generator is None or not callable(reconstruct):
        return None
    return score_true_pairs(real.images, real.labels, reconstruct, lpips=lpips)


def unpaired_set_scores(real: Any, synthetic: Any, *, lpips: Any = None) -> dict[str, float]:
    """Paper 001's set-level mean PSNR and SSIM (and LPIPS with an ``lpips`` network) of ``real`` (the held-out
    ImageSet) against ``synthetic`` (an ImageSet), paired class by class (``medsyn.metrics.unpaired_set``)."""
    from medsyn.metrics.unpaired_set import score_unpaired_set

    return score_unpaired_set(real.images, real.labels, synthetic.images, synthetic.labels, lpips=lpips)
