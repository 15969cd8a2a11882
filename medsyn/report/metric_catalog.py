"""What each reported metric means and which direction is better: the one place the report, the radar
and the CSV take this from. Keys are metric-name prefixes; the longest matching prefix wins, so
``fid_effnet_lite0`` finds ``fid``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MetricInfo", "METRIC_CATALOG", "describe_metric", "RADAR_AXES"]


@dataclass(frozen=True)
class MetricInfo:
    axis: str  # trilemma axis: fidelity, diversity, sampling speed, utility, robustness, privacy
    meaning: str
    higher_is_better: bool
    unit: str = ""


METRIC_CATALOG: dict[str, MetricInfo] = {
    "precision": MetricInfo(
        "fidelity",
        "fraction of synthetic images inside the real-image manifold (k-NN hyperspheres, k=3; Kynkaanniemi et al. 2019)",
        True,
    ),
    "recall": MetricInfo(
        "diversity",
        "fraction of real training images inside the synthetic-image manifold (k-NN hyperspheres, k=3)",
        True,
    ),
    "density": MetricInfo("fidelity", "expected number of real k-NN spheres holding a synthetic image, / k (Naeem 2020)", True),
    "coverage": MetricInfo("diversity", "fraction of real images whose k-NN sphere holds a synthetic image (Naeem 2020)", True),
    "fid": MetricInfo(
        "fidelity+diversity",
        "Frechet distance between Gaussian fits of real and synthetic features; only comparable within one extractor",
        False,
    ),
    "sampling_speed": MetricInfo(
        "sampling speed", "synthetic images generated per second after a warm-up (paper 000 §4.1.3)", True, "samples/s"
    ),
    "utility_real_baseline": MetricInfo(
        "utility", "test accuracy on real test images of a classifier trained on the real training split", True
    ),
    "utility_synthetic_only": MetricInfo(
        "utility",
        "test accuracy on real test images of a classifier trained only on synthetic images (as many as real training)",
        True,
    ),
    "utility": MetricInfo("utility", "test accuracy on real test images of a downstream classifier", True),
    "robustness_real_baseline": MetricInfo(
        "robustness", "accuracy of the real-trained classifier on DeepFool-perturbed real test images (5 steps)", True
    ),
    "robustness_synthetic_only": MetricInfo(
        "robustness",
        "accuracy of the synthetic-trained classifier on DeepFool-perturbed real test images (5 steps)",
        True,
    ),
    "robustness": MetricInfo("robustness", "accuracy on DeepFool-perturbed real test images (5 steps)", True),
    "privacy_ssim_max_paper": MetricInfo(
        "privacy",
        "mean over q=100 random synthetic images (l=10 repetitions) of the max SSIM to any real training image "
        "(paper 000 §4.1.6); high = synthetic images close to training images",
        False,
    ),
    "privacy_ssim_max_full": MetricInfo(
        "privacy", "mean over every synthetic image of the max SSIM to any real training image (full scan)", False
    ),
    "privacy": MetricInfo("privacy", "similarity of synthetic images to training images", False),
}

# The six axes of the radar (paper 000 Fig. 7): axis label -> metric name prefix used for it.
RADAR_AXES: dict[str, str] = {
    "fidelity": "precision",
    "diversity": "recall",
    "sampling speed": "sampling_speed",
    "utility": "utility_synthetic_only",
    "robustness": "robustness_synthetic_only",
    "privacy": "privacy_ssim_max_paper",
}


def describe_metric(name: str) -> MetricInfo:
    """The catalogue entry of the longest prefix of ``name``; ValueError for an unknown metric."""
    matches = [prefix for prefix in METRIC_CATALOG if name == prefix or name.startswith(prefix + "_")]
    if not matches:
        raise ValueError(f"metric {name!r} is not in the metric catalogue (known prefixes: {sorted(METRIC_CATALOG)})")
    return METRIC_CATALOG[max(matches, key=len)]
