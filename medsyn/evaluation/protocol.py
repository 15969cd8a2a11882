"""The assessment protocol of papers 000 (§4.1) and 001 (§3.2-3.4) for one seed and one synthetic set, and
the aggregation over seeds; every workflow (assessment, quickstart, DP sweep) calls these.

    protocol = Protocol.from_sections(utility=..., robustness=..., privacy=..., fidelity=..., speed=...)
    real = RealData.prepare(train, val, test, spaces, protocol)
    baseline = train_baselines(real, protocol, seed)                # Baseline Real / Geometric DA
    tree, notes, figures = evaluate_for_seed(real, source, protocol, seed, baseline, run_dir=..., ...)
    aggregated = aggregate_set(per_seed_trees, kind=..., notes=...)

Choices (the assessment records each in results.json metadata):

- Utility/robustness: one classifier per (regime, multiplier), scored on the real test split, best epoch
  on the real validation split; the baselines use no synthetic image, are trained once per seed and shared
  by every synthetic set (keyed ``0x`` and repeated under every multiplier).
- Fidelity compares the 1x synthetic subset with the real training split (equal sizes); privacy uses every
  synthetic image; references are the generator's training members, the DCR holdout the real test split.
- The domain feature space and p(y|x) for the Inception Score come from the seed's Baseline Real classifier.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from medsyn.data.image_set import ImageSet
from medsyn.evaluation.feature_spaces import DOMAIN_EXTRACTOR, FeatureSpaces
from medsyn.evaluation.fidelity_suite import (
    FIDELITY_METRICS,
    fidelity_scores,
    inception_score_of,
    true_pair_scores,
)
from medsyn.evaluation.privacy_suite import dcr_scores, empirical_epsilon_of_generator, ssim_max_scores
from medsyn.evaluation.stage_costs import StageCosts
from medsyn.evaluation.synthetic_labels import first_per_class_index
from medsyn.evaluation.synthetic_sources import SyntheticSource, sample_for_seed
from medsyn.evaluation.utility_regimes import BASELINE_REGIMES, REGIMES, SYNTHETIC_REGIMES, run_utility
from medsyn.models.classifier_training import top_k_key

__all__ = ["METRIC_SECTIONS", "Protocol", "RealData", "aggregate_set", "evaluate_for_seed", "train_baselines"]

# The sections of a per-seed tree that are aggregated over seeds (the rest is per-seed bookkeeping).
METRIC_SECTIONS = ("utility", "robustness", "fidelity", "privacy", "sampling_speed")

_NO_TRUE_PAIRS = ("skipped: PSNR/SSIM need true (real, reconstruction) pairs and this synthetic set has no "
                  "reconstruct method (only a VAE-style model exposing reconstruct(images, labels) has them)")


@dataclass(frozen=True)
class Protocol:
    """Which stages run and with which settings (all from the parsed config sections; None = stage off).

    regimes: utility regimes (baselines and synthetic) in REGIMES order; multipliers: of the synthetic ones.
    classifier: ``ClassifierSection.as_mapping()``; robustness: {"steps", "engine"}.
    fidelity_metrics: subset of FIDELITY_METRICS; kid: {"subsets", "subset_size"}; domain: domain features
    and IS from the Baseline Real classifier; ssim: {"q", "repeats", "scan"}; gallery_top: images in the privacy
    gallery; dcr: DCR in pixel space (+ the feature space of ``FeatureSpaces.dcr``); epsilon: the
    [privacy.empirical_epsilon] section; speed: the [speed] section.
    """

    regimes: tuple[str, ...]
    multipliers: tuple[int, ...]
    classifier: Mapping[str, Any]
    robustness: Mapping[str, Any] | None
    fidelity_metrics: tuple[str, ...] = FIDELITY_METRICS
    prdc_k: int = 3
    kid: Mapping[str, Any] | None = None
    domain: bool = False
    true_pairs: bool = True
    ssim: Mapping[str, Any] | None = None
    gallery_top: int | None = None
    dcr: bool = False
    epsilon: Mapping[str, Any] | None = None
    epsilon_sampling_offset: int = 0
    speed: Mapping[str, Any] | None = None
    save_synthetic: bool = False

    @property
    def baseline_regimes(self) -> tuple[str, ...]:
        return tuple(r for r in self.regimes if r in BASELINE_REGIMES)

    @property
    def synthetic_regimes(self) -> tuple[str, ...]:
        return tuple(r for r in self.regimes if r in SYNTHETIC_REGIMES)

    @property
    def max_multiplier(self) -> int:
        return max(self.multipliers)

    @classmethod
    def from_sections(cls, *, utility: Mapping[str, Any], classifier: Mapping[str, Any],
                      robustness: Mapping[str, Any], privacy: Mapping[str, Any], fidelity: Mapping[str, Any],
                      speed: Mapping[str, Any]) -> Protocol:
        """The full assessment (paper 000 §4.1 + 001 §3.2) from parsed [utility], [robustness], [privacy],
        [fidelity] and [speed] sections (classifier: the parsed utility.classifier)."""
        epsilon = privacy["empirical_epsilon"]
        return cls(
            regimes=REGIMES, multipliers=tuple(utility["multipliers"]), classifier=dict(classifier),
            robustness=dict(robustness), fidelity_metrics=FIDELITY_METRICS, prdc_k=fidelity["k"],
            kid=dict(fidelity["kid"]), domain=fidelity["domain"], ssim={"q": privacy["q"], "repeats": privacy["repeats"],
                                                                      "scan": privacy["ssim_scan"]},
            gallery_top=privacy["gallery_top"], dcr=True, epsilon=dict(epsilon) if epsilon["enabled"] else None,
            speed=dict(speed),
        )


@dataclass
class RealData:
    """The real splits of a run and their features in the fixed feature spaces (computed once)."""

    train: ImageSet
    val: ImageSet
    test: ImageSet
    spaces: FeatureSpaces
    train_features: dict[str, torch.Tensor] = field(default_factory=dict)
    holdout_features: dict[str, torch.Tensor] = field(default_factory=dict)

    @classmethod
    def prepare(cls, train: ImageSet, val: ImageSet, test: ImageSet, spaces: FeatureSpaces,
                protocol: Protocol) -> RealData:
        real = cls(train, val, test, spaces)
        wanted = list(spaces.names) if protocol.fidelity_metrics else []
        if protocol.dcr and spaces.dcr is not None:
            wanted.append(spaces.dcr)
            real.holdout_features[spaces.dcr] = spaces.extract(test.images, spaces.dcr)
        for name in dict.fromkeys(wanted):
            real.train_features[name] = spaces.extract(train.images, name)
        return real


@dataclass
class Baseline:
    """A seed's baseline classifiers and their results (``run_utility`` output), shared by every set."""

    results: dict[str, Any]
    models: dict[str, Any]
    spaces: FeatureSpaces
    train_features: dict[str, torch.Tensor]


def train_baselines(real: RealData, protocol: Protocol, seed: int, costs: StageCosts | None = None) -> Baseline:
    """The seed's Baseline Real / Geometric DA classifiers; with ``protocol.domain`` also the seed's domain
    feature space (penultimate layer of Baseline Real) and the real training split's features in it."""
    costs = costs if costs is not None else StageCosts()
    results, models = ({}, {})
    if protocol.baseline_regimes:
        results, models = run_utility(real.train, real.val, real.test, None, regimes=protocol.baseline_regimes,
                                      classifier=protocol.classifier, seed=seed, costs=costs,
                                      **_robustness_options(protocol))
    spaces, train_features = real.spaces, dict(real.train_features)
    if protocol.domain:
        spaces = spaces.with_domain(models["baseline_real"]["0x"], real.train.image_shape)
        with costs.stage("features") as work:
            train_features[DOMAIN_EXTRACTOR] = spaces.extract(real.train.images, DOMAIN_EXTRACTOR)
            work.add(len(real.train))
    return Baseline(results, models, spaces, train_features)


def _robustness_options(protocol: Protocol) -> dict[str, Any]:
    if protocol.robustness is None:
        return {"robustness_steps": None}
    return {"robustness_steps": protocol.robustness["steps"],
            **({"robustness_engine": protocol.robustness["engine"]} if "engine" in protocol.robustness else {})}


def evaluate_for_seed(real: RealData, source: SyntheticSource, protocol: Protocol, seed: int, baseline: Baseline,
                      *, run_dir: Path, progress: bool = False, costs: StageCosts | None = None,
                      ) -> tuple[dict[str, Any], dict[str, str], dict[str, Any]]:
    """Every stage of ``protocol`` for ``source`` at ``seed``; each stage's time and memory go to ``costs``.

    Returns (tree, notes, artefacts): tree = {"utility", "robustness", "fidelity", "privacy",
    "sampling_speed"} (plain numbers; sections of stages that are off are absent), notes = metric -> why it
    was not computed, artefacts = what the first-seed figures need ("dcr", "ssim", "synthetic", "epsilon").
    """
    train = real.train
    costs = costs if costs is not None else StageCosts()
    with costs.stage("synthetic images (generator training and sampling)"):
        synthetic = sample_for_seed(source, train, seed, protocol.max_multiplier, run_dir, progress=progress,
                                    save=protocol.save_synthetic)
    tree: dict[str, Any] = {}
    notes: dict[str, str] = {}
    artefacts: dict[str, Any] = {"synthetic": synthetic}
    if protocol.synthetic_regimes or protocol.baseline_regimes:
        tree.update(_utility_stage(real, synthetic, protocol, seed, baseline, costs))
    spaces = baseline.spaces
    wanted = set(spaces.names) if protocol.fidelity_metrics else set()
    if protocol.dcr and spaces.dcr is not None:
        wanted.add(spaces.dcr)
    with costs.stage("features") as work:
        synthetic_features = {name: spaces.extract(synthetic.images, name) for name in wanted}
        work.add(len(synthetic) * len(wanted))
    with costs.stage("fidelity") as work:
        fidelity = _fidelity_stage(real, synthetic, synthetic_features, protocol, seed, baseline)
        work.add(len(synthetic))
    if protocol.speed is not None and source.kind != "folder":
        with costs.stage("sampling speed"):
            tree["sampling_speed"] = _sampling_speed(source.trained[seed], protocol.speed, train.num_classes, seed)
    if protocol.true_pairs:  # PSNR / SSIM / LPIPS on true pairs and on paper 001's unpaired set
        from medsyn.evaluation.fidelity_suite import lpips_network_of, unpaired_set_scores

        lpips, why_no_lpips = lpips_network_of(spaces, real.test.image_shape)
        with costs.stage("fidelity: PSNR, SSIM, LPIPS"):
            pairs = true_pair_scores(source.trained.get(seed), real.test, lpips=lpips)
            fidelity["unpaired_set"] = unpaired_set_scores(real.test, synthetic, lpips=lpips)
        if pairs is not None:
            fidelity["true_pairs"] = pairs
        else:
            notes["psnr_ssim_true_pairs"] = _NO_TRUE_PAIRS
        if why_no_lpips is not None:
            notes["lpips"] = why_no_lpips
    if fidelity:
        tree["fidelity"] = fidelity
    privacy = _privacy_stage(real, source, synthetic, synthetic_features, protocol, seed, baseline,
                             run_dir=run_dir, progress=progress, notes=notes, artefacts=artefacts, costs=costs)
    if privacy:
        tree["privacy"] = privacy
    return tree, notes, artefacts


def _utility_stage(real: RealData, synthetic: ImageSet, protocol: Protocol, seed: int, baseline: Baseline,
                   costs: StageCosts) -> dict[str, Any]:
    """{"utility": regime -> multiplier -> accuracy, macro F1} and, with robustness on, {"robustness": ...};
    the baseline regimes come from ``baseline`` (trained once per seed), the others are trained here."""
    synthetic_results = {}
    if protocol.synthetic_regimes:
        synthetic_results, _models = run_utility(
            real.train, real.val, real.test, synthetic, regimes=protocol.synthetic_regimes,
            multipliers=protocol.multipliers, classifier=protocol.classifier, seed=seed, costs=costs,
            **_robustness_options(protocol))
    regime_results = {**baseline.results, **synthetic_results}
    present = [regime for regime in REGIMES if regime in regime_results]
    # with classifier.top_k > 1 the top-k scores sit beside the top-1 ones ("top3_accuracy", paper 000 §5.2)
    utility_keys = ("accuracy", "macro_f1", top_k_key("accuracy", protocol.classifier.get("top_k", 1)))
    robustness_keys = ("adversarial_accuracy", top_k_key("adversarial_accuracy", protocol.classifier.get("top_k", 1)))
    tree = {"utility": {regime: {m: {k: e[k] for k in dict.fromkeys(utility_keys)}
                                 for m, e in regime_results[regime].items()} for regime in present}}
    if protocol.robustness is not None:
        tree["robustness"] = {regime: {m: {k: e[k] for k in dict.fromkeys(robustness_keys)}
                                       for m, e in regime_results[regime].items()} for regime in present}
    return tree


def _fidelity_stage(real: RealData, synthetic: ImageSet, synthetic_features: Mapping[str, torch.Tensor],
                    protocol: Protocol, seed: int, baseline: Baseline) -> dict[str, Any]:
    """PRDC/FID/KID per feature space on the 1x subset and IS from the Baseline Real classifier."""
    train, spaces = real.train, baseline.spaces
    index_1x = first_per_class_index(synthetic.labels, train.class_counts())
    fidelity: dict[str, Any] = {}
    if protocol.fidelity_metrics:
        fidelity = {name: fidelity_scores(baseline.train_features[name], synthetic_features[name][index_1x],
                                          metrics=protocol.fidelity_metrics, k=protocol.prdc_k, kid=protocol.kid,
                                          seed=seed, standardise=name != "inception_v3")
                    for name in spaces.names}
    if protocol.domain:
        fidelity["inception_score"] = {
            DOMAIN_EXTRACTOR: inception_score_of(baseline.models["baseline_real"]["0x"],
                                                 synthetic.subset(index_1x).images)}
    return fidelity


def _privacy_stage(real: RealData, source: SyntheticSource, synthetic: ImageSet,
                   synthetic_features: Mapping[str, torch.Tensor], protocol: Protocol, seed: int,
                   baseline: Baseline, *, run_dir: Path, progress: bool, notes: dict[str, str],
                   artefacts: dict[str, Any], costs: StageCosts) -> dict[str, Any]:
    """SSIM-max, DCR (pixel space and the DCR feature space) and the empirical epsilon of a generator."""
    train, spaces = real.train, baseline.spaces
    privacy: dict[str, Any] = {}
    if protocol.ssim is not None:
        with costs.stage("privacy: SSIM-max") as work:
            ssim, artefacts["ssim"] = ssim_max_scores(synthetic.images, train.images, q=protocol.ssim["q"],
                                                      repeats=protocol.ssim["repeats"], seed=seed,
                                                      scan=protocol.ssim.get("scan", "full"))
            scanned = artefacts["ssim"].get("scanned_indices")
            work.add((len(synthetic) if scanned is None else len(scanned)) * len(train), "image pairs")
        privacy.update(ssim)
        if "ssim_max_full" not in ssim:
            notes["ssim_max_full"] = ("not computed: privacy.ssim_scan is 'paper' (only the synthetic images the "
                                      "protocol draws were scanned; the gallery shows those)")
    if protocol.dcr:
        dcr_spaces = {"pixel": (synthetic.images, train.images, real.test.images)}
        if spaces.dcr is not None:
            dcr_spaces[spaces.dcr] = (synthetic_features[spaces.dcr], real.train_features[spaces.dcr],
                                      real.holdout_features[spaces.dcr])
        with costs.stage("privacy: DCR") as work:
            scores, artefacts["dcr"] = dcr_scores(dcr_spaces)
            work.add(sum((len(query) + len(holdout)) * len(members)
                         for query, members, holdout in dcr_spaces.values()), "distance pairs")
        privacy.update(scores)
    if protocol.epsilon is not None and source.kind == "generator":
        epsilon, artefacts["epsilon"] = empirical_epsilon_of_generator(
            lambda: source.build_generator(train), train, seed=seed, settings=protocol.epsilon, run_dir=run_dir,
            sampling_seed=seed + protocol.epsilon_sampling_offset, progress=progress, costs=costs)
        privacy.update(epsilon)
    else:
        notes["empirical_epsilon"] = (
            "not computed: it needs victim and ablated generators trained on neighbouring data sets, "
            "possible only for synthetic sets of kind 'generator'"
            if source.kind != "generator" else "disabled in the privacy config")
    return privacy


def _sampling_speed(generator: Any, speed: Mapping[str, Any], num_classes: int, seed: int) -> float:
    """Paper 000 §4.1.3: S = c / t of the generator that made this seed's synthetic set."""
    from medsyn.metrics.speed import sampling_speed

    return sampling_speed(lambda labels: generator.sample(labels, seed=seed),
                          torch.arange(speed["count"]) % num_classes,
                          warmup=speed["warmup"], repeats=speed["repeats"])["value"]


def aggregate_set(per_seed: Sequence[Mapping[str, Any]], *, kind: str, notes: Mapping[str, str],
                  extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One synthetic set over seeds: every metric -> mean and 90% CI (``aggregate_seeds``), the baselines'
    ``0x`` entries repeated under every multiplier of the synthetic regimes, plus kind, extra fields,
    not_computed and per_seed."""
    from medsyn.metrics.statistics import aggregate_seeds
    from medsyn.report.metric_catalog import value_range_of

    metrics = [{key: tree[key] for key in METRIC_SECTIONS if key in tree} for tree in per_seed]
    # bounded metrics get a bootstrap interval inside their range (issue 14 item 6)
    aggregated = _with_baselines_at_every_multiplier(aggregate_seeds(metrics, value_range_of=value_range_of))
    return {"kind": kind, **dict(extra or {}), **aggregated, "not_computed": dict(notes), "per_seed": list(per_seed)}


def _with_baselines_at_every_multiplier(aggregated: dict[str, Any]) -> dict[str, Any]:
    """A baseline uses no synthetic image (one classifier per seed, key ``0x``); results key every regime by
    the synthetic multipliers too (the comparison of paper 000 Figs. 5-6)."""
    for section in ("utility", "robustness"):
        regimes = aggregated.get(section, {})
        multipliers = sorted({key for regime, entries in regimes.items() if regime not in BASELINE_REGIMES
                              for key in entries if key != "0x"})
        for regime in BASELINE_REGIMES:
            if regime in regimes and "0x" in regimes[regime]:
                for key in multipliers:
                    regimes[regime].setdefault(key, copy.deepcopy(regimes[regime]["0x"]))
    return aggregated
