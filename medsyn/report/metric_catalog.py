"""What each metric of the results schema means and which direction is better, and the radar's axes: the one
place the validator, the report, the radar and the CSV take this from.

A metric's catalogue name is its key path inside one synthetic set with the set-specific parts (extractor,
regime, multiplier, DCR space, IS classifier) left out: ``fidelity.effnet_lite0.fid`` is ``fidelity.fid``,
``utility.synthetic_da.2x.accuracy`` is ``utility.accuracy``, ``privacy.dcr_ks.pixel`` is ``privacy.dcr_ks``
(:func:`metric_name_of`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "BASELINE_REGIMES",
    "METRIC_CATALOG",
    "MetricInfo",
    "RADAR_AXES",
    "REGIME_LABELS",
    "RadarAxis",
    "SYNTHETIC_REGIMES",
    "VALUE_RANGES",
    "describe_metric",
    "metric_name_of",
    "value_range_of",
]

# The utility regimes of paper 000 §4.1.4, in the order of its Tables 3-4 (the evaluation layer trains them).
BASELINE_REGIMES = ("baseline_real", "geometric_da")
SYNTHETIC_REGIMES = ("data_anonymization", "synthetic_da", "combined_da")
REGIME_LABELS = {
    "baseline_real": "Baseline Real",
    "geometric_da": "Geometric DA",
    "data_anonymization": "Data Anonymization",
    "synthetic_da": "Synthetic DA",
    "combined_da": "Combined DA",
}


@dataclass(frozen=True)
class MetricInfo:
    axis: str  # trilemma axis: fidelity, diversity, sampling speed, utility, robustness, privacy
    meaning: str
    higher_is_better: bool
    unit: str = ""


METRIC_CATALOG: dict[str, MetricInfo] = {
    "fidelity.precision": MetricInfo(
        "fidelity",
        "fraction of synthetic images inside the real-image manifold (k-NN hyperspheres, k=3; Kynkaanniemi et al. 2019)",
        True,
    ),
    "fidelity.recall": MetricInfo(
        "diversity",
        "fraction of real training images inside the synthetic-image manifold (k-NN hyperspheres, k=3)",
        True,
    ),
    "fidelity.density": MetricInfo(
        "fidelity", "expected number of real k-NN spheres holding a synthetic image, / k (Naeem 2020)", True
    ),
    "fidelity.coverage": MetricInfo(
        "diversity", "fraction of real images whose k-NN sphere holds a synthetic image (Naeem 2020)", True
    ),
    "fidelity.fid": MetricInfo(
        "fidelity+diversity",
        "Frechet distance between Gaussian fits of real and synthetic features; only comparable within one extractor",
        False,
    ),
    "fidelity.fid_holdout": MetricInfo(
        "fidelity+diversity",
        "FID of the synthetic set against the holdout (real images the generator never saw) at matched sizes, per "
        "class the same count from each (paper 001 Fig. 2); only comparable within one extractor",
        False,
    ),
    "fidelity.kid": MetricInfo(
        "fidelity+diversity",
        "squared MMD (cubic polynomial kernel) between real and synthetic features, averaged over subsets; "
        "only comparable within one extractor",
        False,
    ),
    "fidelity.inception_score": MetricInfo(
        "fidelity+diversity",
        "exp of the mean KL divergence between p(y|x) and p(y) under the named classifier (not ImageNet Inception)",
        True,
    ),
    "fidelity.true_pairs.psnr": MetricInfo(
        "fidelity", "PSNR between real test images and their reconstructions (true pairs only)", True, "dB"
    ),
    "fidelity.true_pairs.ssim": MetricInfo(
        "fidelity", "SSIM between real test images and their reconstructions (true pairs only)", True
    ),
    "fidelity.true_pairs.lpips": MetricInfo(
        "fidelity", "LPIPS (VGG16, lpips v0.1) between real test images and their reconstructions", False
    ),
    "fidelity.unpaired_set.psnr": MetricInfo(
        "fidelity", "paper 001's set-level PSNR: real test images vs as many synthetic images of their class, "
        "paired with no correspondence (a similarity of two sets, not a reconstruction error)", True, "dB"
    ),
    "fidelity.unpaired_set.ssim": MetricInfo(
        "fidelity", "paper 001's set-level SSIM of the same class-matched, unrelated pairs", True
    ),
    "fidelity.unpaired_set.lpips": MetricInfo(
        "fidelity", "paper 001's set-level LPIPS (VGG16, lpips v0.1) of the same class-matched, unrelated pairs", False
    ),
    "sampling_speed": MetricInfo(
        "sampling speed", "synthetic images generated per second after a warm-up (paper 000 §4.1.3)", True, "samples/s"
    ),
    "utility.accuracy": MetricInfo(
        "utility", "test accuracy on real test images of a classifier trained in the regime (paper 000 §4.1.4)", True
    ),
    "utility.macro_f1": MetricInfo("utility", "macro-averaged F1 on real test images of the same classifier", True),
    "utility.top_k_accuracy": MetricInfo(
        "utility", "top-k accuracy (``top3_accuracy``: the true class among the 3 largest logits; paper 000 §5.2 "
        "reports top-3 for CheXpert) of the same classifier on real test images", True
    ),
    "robustness.top_k_adversarial_accuracy": MetricInfo(
        "robustness", "top-k accuracy on the same DeepFool-perturbed real test images (``top3_adversarial_accuracy``: "
        "robust when the true class stays among the 3 largest logits after the attack)", True
    ),
    "robustness.adversarial_accuracy": MetricInfo(
        "robustness", "accuracy of the regime's classifier on DeepFool-perturbed real test images (paper 000 §4.1.5)",
        True,
    ),
    "privacy.ssim_max_paper": MetricInfo(
        "privacy",
        "mean over q random synthetic images (l repetitions) of the max SSIM to any real training image "
        "(paper 000 §4.1.6); high = synthetic images close to training images",
        False,
    ),
    "privacy.ssim_max_full": MetricInfo(
        "privacy", "mean over every synthetic image of the max SSIM to any real training image (full scan)", False
    ),
    "privacy.dcr_ks": MetricInfo(
        "privacy",
        "KS distance between the ECDFs of synthetic and held-out real distances to the closest training member "
        "(paper 001 §3.2); 0 = synthetic images no closer to the training members than unseen real images",
        False,
    ),
    "privacy.dcr_area": MetricInfo(
        "privacy", "area between the same two ECDFs of distances to the closest training record", False
    ),
    "privacy.dcr_area_normalised": MetricInfo(
        "privacy", "the DCR area divided by the range of the pooled distances, in [0, 1] (paper 001 Fig. 11's "
        "normalised area between the ECDFs)", False
    ),
    **{
        f"privacy.empirical_epsilon_{statistic}_{convention}": MetricInfo(
            "privacy",
            f"{reading} over the queries of the signed log density ratio victim / ablated generator at the query "
            f"(paper 001 §3.2: neighbouring sets differ by the query, alone in its class), kNN in an Isomap of real "
            f"training images; {meaning}",
            False,
        )
        for statistic, reading in (("worst", "maximum (eq. 1's sup)"), ("mean", "mean"))
        for convention, meaning in (("paper_code", "ln(r_a / r_v) as the authors' code (no dimension factor)"),
                                    ("with_d", "ln p_v - ln p_a = d ln(r_a / r_v) + ln(n_a / n_v)"))
    },
    "privacy.dp_epsilon": MetricInfo(
        "privacy",
        "formal (epsilon, delta)-DP guarantee of DP-SGD training (Opacus RDP accountant); null = no DP (sigma 0)",
        False,
    ),
}

_MULTIPLIER = re.compile(r"^[0-9]+x$")
_TOP_K = re.compile(r"^top[0-9]+_(?=(adversarial_)?accuracy$)")


def describe_metric(name: str) -> MetricInfo:
    """The catalogue entry of ``name`` (a catalogue name or a key path); ValueError for an unknown metric."""
    key = name if name in METRIC_CATALOG else metric_name_of(name)
    return METRIC_CATALOG[key]


def metric_name_of(path: str) -> str:
    """Key path inside one synthetic set -> catalogue name; ValueError naming the path when it is not a metric
    of the schema (unknown regime, multiplier key not ``<n>x``, unknown metric, wrong depth)."""
    parts = path.split(".")
    section = parts[0]
    if section in ("utility", "robustness"):
        if len(parts) != 4:
            raise ValueError(f"{path}: expected {section}.<regime>.<multiplier>.<metric>")
        if parts[1] not in REGIME_LABELS:
            raise ValueError(f"{path}: unknown regime {parts[1]!r}; expected one of {list(REGIME_LABELS)}")
        if not _MULTIPLIER.match(parts[2]):
            raise ValueError(f"{path}: multiplier key {parts[2]!r} is not of the form '<n>x' (e.g. '1x', '0x')")
        # "top3_accuracy" (classifier.top_k 3) is the catalogue's "utility.top_k_accuracy"
        name = f"{section}.{_TOP_K.sub('top_k_', parts[3])}"
    elif section == "fidelity":
        if len(parts) != 3:
            raise ValueError(f"{path}: expected fidelity.<extractor>.<metric>")
        if parts[1] in ("true_pairs", "unpaired_set"):
            name = f"fidelity.{parts[1]}.{parts[2]}"
        elif parts[1] == "inception_score":
            name = "fidelity.inception_score"
        else:
            name = f"fidelity.{parts[2]}"
    elif section == "privacy":
        if parts[1:2] in (["dcr_ks"], ["dcr_area"], ["dcr_area_normalised"]):
            if len(parts) != 3:
                raise ValueError(f"{path}: expected privacy.{parts[1]}.<space>")
            name = f"privacy.{parts[1]}"
        elif len(parts) != 2:
            raise ValueError(f"{path}: expected privacy.<metric>")
        else:
            name = path
    else:
        name = path
    if name not in METRIC_CATALOG:
        raise ValueError(f"{path}: metric {name!r} is not in the metric catalogue (known: {sorted(METRIC_CATALOG)})")
    return name


_INF = float("inf")
# The range of each bounded metric (catalogue name -> (low, high)): the one place the seed statistics take it
# from (``value_range_of``); a metric not listed is unbounded and gets the Student-t interval.
VALUE_RANGES: dict[str, tuple[float, float]] = {
    "fidelity.precision": (0.0, 1.0),
    "fidelity.recall": (0.0, 1.0),
    "fidelity.coverage": (0.0, 1.0),
    "fidelity.density": (0.0, _INF),
    "fidelity.fid": (0.0, _INF),
    "fidelity.fid_holdout": (0.0, _INF),
    "fidelity.inception_score": (1.0, _INF),
    "fidelity.true_pairs.ssim": (-1.0, 1.0),
    "fidelity.true_pairs.lpips": (0.0, _INF),
    "fidelity.unpaired_set.ssim": (-1.0, 1.0),
    "fidelity.unpaired_set.lpips": (0.0, _INF),
    "sampling_speed": (0.0, _INF),
    "utility.accuracy": (0.0, 1.0),
    "utility.top_k_accuracy": (0.0, 1.0),
    "robustness.adversarial_accuracy": (0.0, 1.0),
    "robustness.top_k_adversarial_accuracy": (0.0, 1.0),
    "privacy.ssim_max_paper": (-1.0, 1.0),
    "privacy.ssim_max_full": (-1.0, 1.0),
    "privacy.dcr_ks": (0.0, 1.0),
    "privacy.dcr_area": (0.0, _INF),
    "privacy.dcr_area_normalised": (0.0, 1.0),
}


def value_range_of(path: str) -> tuple[float, float] | None:
    """Key path inside one synthetic set -> the metric's (low, high), or None for an unbounded metric and for
    a number the catalogue does not describe (a count, a stage cost): those keep the Student-t interval."""
    try:
        name = metric_name_of(path)
    except ValueError:
        return None  # not a catalogued metric, so it has no catalogued range
    return VALUE_RANGES.get(name)


def _mean_at(entry: Mapping[str, Any], path: tuple[str, ...]) -> float | None:
    node: Any = entry
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return None if node is None else float(node["mean"])


def _mean_over_synthetic_regimes(section: str, metric: str) -> Callable[[Mapping[str, Any], str], float | None]:
    def read(entry: Mapping[str, Any], _extractor: str) -> float | None:
        regimes = entry.get(section, {})
        values = [multiplier[metric]["mean"] for regime in SYNTHETIC_REGIMES
                  for multiplier in regimes.get(regime, {}).values() if metric in multiplier]
        return sum(values) / len(values) if values else None

    return read


@dataclass(frozen=True)
class RadarAxis:
    metric: str  # the catalogue name it is read from (its direction comes from there)
    reading: str  # how one synthetic set's value is read, in words
    read: Callable[[Mapping[str, Any], str], float | None]  # (set entry, extractor) -> mean, None when absent

    @property
    def higher_is_better(self) -> bool:
        return METRIC_CATALOG[self.metric].higher_is_better


# The six axes of the radar (paper 000 Fig. 7), in drawing order.
RADAR_AXES: dict[str, RadarAxis] = {
    "fidelity": RadarAxis("fidelity.precision", "precision on the radar extractor",
                          lambda entry, extractor: _mean_at(entry, ("fidelity", extractor, "precision"))),
    "diversity": RadarAxis("fidelity.recall", "recall on the radar extractor",
                           lambda entry, extractor: _mean_at(entry, ("fidelity", extractor, "recall"))),
    "utility": RadarAxis("utility.accuracy", "accuracy averaged over the synthetic regimes and multipliers present",
                         _mean_over_synthetic_regimes("utility", "accuracy")),
    "robustness": RadarAxis("robustness.adversarial_accuracy",
                            "adversarial accuracy averaged over the synthetic regimes and multipliers present",
                            _mean_over_synthetic_regimes("robustness", "adversarial_accuracy")),
    "privacy": RadarAxis("privacy.ssim_max_paper", "ssim_max_paper (inverted: lower max-SSIM is more private)",
                         lambda entry, _extractor: _mean_at(entry, ("privacy", "ssim_max_paper"))),
    "sampling speed": RadarAxis("sampling_speed", "samples per second of the generator (sets of external images have none)",
                                lambda entry, _extractor: _mean_at(entry, ("sampling_speed",))),
}
