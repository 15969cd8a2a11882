"""The full assessment protocol of papers 000 (§4.1) and 001 (§3.2-3.4), over seeds, for one real data set and
one or more synthetic sets; the function the ``medsyn_assessment`` bundle's ``run`` calls.

    run_assessment("runs/assess", data={"kind": "digits", "options": {"size": 32}, "per_class": 20},
                   synthetic_sets={"cvae": {"kind": "generator", "model": "cvae", "config": {...}},
                                   "theirs": {"kind": "folder", "path": "gan_out/", "labels_csv": "gan_out/labels.csv"}},
                   seeds=[0, 1, 2], utility={...}, robustness={...}, privacy={...}, fidelity={...})

Synthetic set kinds:

- ``{"kind": "generator", "model": name, "config": {...registry overrides incl. steps, batch_size}}``: a medsyn
  generator trained from scratch on the real training split once PER SEED (the seed drives its initial weights,
  batch order and sampling), so the confidence intervals include the generator's training variance.
- ``{"kind": "checkpoint", "path": ...}``: a trained medsyn generator (``load_generator``), sampled per seed.
- ``{"kind": "folder", "path": ..., "labels_csv": ...}``: images made by any tool (``load_labelled_folder``);
  the images are fixed, so seeds vary the classifiers' training and the privacy draws.

Choices (each recorded in ``results.json`` metadata):

- The real split is drawn ONCE (``data["split_seed"]``, default 0) and shared by every seed and every set: a
  generator's training members are then the same real images for all seeds, which the privacy measures need.
- A generator set is sampled at ``max(multipliers)`` x the real training size, class-balanced like the real
  training split; the utility regime at m x takes the first m * n_c images of each class c.
- Fidelity (precision, recall, density, coverage with k, FID, KID) compares the 1x subset (as many synthetic
  images per class as real ones) with the real training split, so set sizes are equal; privacy uses every
  synthetic image.
- Privacy references are the generator's training members (the real training split); the DCR holdout is the
  real test split, never seen by a generator.
- Domain extractor: the penultimate layer of that seed's Baseline Real classifier (trained on real train only).
- Empirical epsilon (generator sets only): per seed, the victim is that seed's trained generator and one
  ablated generator is trained per query (``n_queries`` samples of the minority class) on the training split
  minus the query.
- PSNR/SSIM on true pairs need reconstructions of real images: computed only for generators with a
  ``reconstruct(images, labels)`` method; otherwise the report says they were skipped and why.

Every metric is aggregated over seeds with ``medsyn.metrics.statistics.mean_ci90``. All input checks (data,
synthetic folder size/channels/labels/count, generator configs, checkpoint classes/shape, weights files) run
before any training starts.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from medsyn.config.sections import (
    FIRST_FIDELITY_EXTRACTOR,
    PAPER_SEEDS,
    AssessmentData,
    AssessmentPrivacy,
    ClassifierSection,
    FidelitySection,
    RobustnessSection,
    SpeedSection,
    UtilitySection,
    parse_synthetic_sets,
)
from medsyn.config.strict import parse_section, strict_arguments
from medsyn.data.image_set import ImageSet
from medsyn.io.atomic import write_json_atomic, write_text_atomic
from medsyn.io.output_folder import writes_output_folder
from medsyn.metrics.inception_score import IS_SPLITS, inception_score
from medsyn.metrics.speed import sampling_speed
from medsyn.models.classifier_training import predict_logits

__all__ = ["DOMAIN_EXTRACTOR", "SYNTHETIC_KINDS", "class_balanced_labels", "run_assessment"]

logger = logging.getLogger(__name__)

DOMAIN_EXTRACTOR = "domain_baseline_real"
SYNTHETIC_KINDS = ("generator", "checkpoint", "folder")
_BASELINE_REGIMES = ("baseline_real", "geometric_da")


def class_balanced_labels(real: ImageSet, multiplier: int) -> torch.Tensor:
    """int64 [multiplier * len(real)]: ``multiplier`` x the per-class counts of ``real``, sorted by class."""
    counts = torch.tensor(real.class_counts()) * int(multiplier)
    return torch.repeat_interleave(torch.arange(real.num_classes), counts)


@dataclass
class _SyntheticSource:
    """A validated synthetic set spec; ``fixed`` holds a folder's images, ``generator`` a loaded checkpoint."""

    name: str
    kind: str
    spec: dict[str, Any]
    fixed: ImageSet | None = None
    generator: Any = None
    trained: dict[int, Any] = field(default_factory=dict)


def _check_mapping(value: Any, name: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"{name} must be a mapping, got {type(value).__name__}")
    return dict(value)


def _validate_seeds(seeds: Sequence[int]) -> list[int]:
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Sequence) or len(seeds) == 0:
        raise ValueError(f"seeds must be a non-empty list of integers, got {seeds!r}")
    if any(isinstance(s, bool) or not isinstance(s, int) for s in seeds) or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct integers, got {list(seeds)}")
    return list(seeds)


def _prepare_sources(
    synthetic_sets: Mapping[str, Mapping[str, Any]], train: ImageSet, max_multiplier: int
) -> list[_SyntheticSource]:
    """Validate every synthetic set spec against the real training split (no training happens here)."""
    from medsyn.data.labelled_folder import load_labelled_folder
    from medsyn.models.registry import build_generator, load_generator

    if not isinstance(synthetic_sets, Mapping) or not synthetic_sets:
        raise ValueError("synthetic_sets must name at least one synthetic set, e.g. {'cvae': {'kind': 'generator', ...}}")
    sources = []
    for name, raw in synthetic_sets.items():
        spec = _check_mapping(raw, f"synthetic_sets[{name!r}]")
        kind = spec.get("kind")
        where = f"synthetic_sets[{name!r}]"
        if kind not in SYNTHETIC_KINDS:
            raise ValueError(f"{where}: kind must be one of {list(SYNTHETIC_KINDS)}, got {kind!r}")
        source = _SyntheticSource(name=str(name), kind=kind, spec=spec)
        if kind == "generator":
            if "model" not in spec:
                raise ValueError(f"{where}: a generator set needs 'model' (e.g. 'cvae')")
            # builds (and thereby validates) the model config now; the real training happens per seed
            build_generator(spec["model"], num_classes=train.num_classes, image_shape=train.image_shape,
                            **dict(spec.get("config") or {}))
        elif kind == "checkpoint":
            if "path" not in spec:
                raise ValueError(f"{where}: a checkpoint set needs 'path'")
            if not Path(spec["path"]).is_file():
                raise FileNotFoundError(f"{where}: generator checkpoint not found: {spec['path']}")
            generator = load_generator(spec["path"])
            if generator.num_classes != train.num_classes or tuple(generator.image_shape) != train.image_shape:
                raise ValueError(
                    f"{where}: checkpoint {spec['path']} makes {generator.num_classes} classes of (C,H,W)="
                    f"{tuple(generator.image_shape)} but the real data has {train.num_classes} classes of "
                    f"{train.image_shape}"
                )
            source.generator = generator
        else:
            for key in ("path", "labels_csv"):
                if key not in spec:
                    raise ValueError(f"{where}: a folder set needs 'path' and 'labels_csv'")
            folder = load_labelled_folder(spec["path"], spec["labels_csv"], class_names=train.class_names,
                                          image_shape=train.image_shape,
                                          allow_outside_root=spec.get("allow_outside_root", False) is True)
            needed = [max_multiplier * count for count in train.class_counts()]
            have = folder.class_counts()
            short = [f"{train.class_names[c]!r}: {have[c]} < {needed[c]}" for c in range(train.num_classes)
                     if have[c] < needed[c]]
            if short:
                raise ValueError(
                    f"{where}: folder {spec['path']} has too few images for the {max_multiplier}x regimes: it needs "
                    f"{sum(needed)} images ({max_multiplier} x the {len(train)} real training images, per class as "
                    f"in the real training split {train.class_counts()}); short in " + ", ".join(short)
                )
            source.fixed = folder
        sources.append(source)
    return sources


def _register_weight_extractors(fidelity: Mapping[str, Any]) -> list[str]:
    """Load the Inception-v3 / VGG16 weights files now (a wrong file fails before training); their names."""
    from medsyn.metrics.features import register_inception_v3, register_vgg16

    names = []
    for key, register, name in (("inception_v3_weights", register_inception_v3, "inception_v3"),
                                ("vgg16_weights", register_vgg16, "vgg16")):
        path = fidelity.get(key)
        if path:
            if not Path(path).is_file():
                raise FileNotFoundError(f"fidelity.{key}: weights file not found: {path}")
            try:
                register(path, name=name)
            except ValueError as error:
                raise ValueError(f"fidelity.{key}: {path} is not a {name} weights file: {error}") from error
            names.append(name)
    return names


def _synthetic_for_seed(
    source: _SyntheticSource, train: ImageSet, seed: int, max_multiplier: int, model_dir: Path, progress: bool
) -> ImageSet:
    from medsyn.models.registry import build_generator

    if source.kind == "folder":
        return source.fixed  # type: ignore[return-value]
    if source.kind == "generator":
        generator = build_generator(source.spec["model"], num_classes=train.num_classes,
                                    image_shape=train.image_shape, **dict(source.spec.get("config") or {}))
        generator.fit(train, model_dir / f"seed{seed}" / "checkpoint.pt", seed=seed, progress=progress)
        source.trained[seed] = generator
    else:
        generator = source.generator
        source.trained[seed] = generator
    labels = class_balanced_labels(train, max_multiplier)
    images = generator.sample(labels, seed=seed + 1).float().clamp(0.0, 1.0).contiguous()
    return ImageSet(images, labels, train.class_names, f"{source.name} seed {seed}")


def _fidelity_scores(real: torch.Tensor, synthetic: torch.Tensor, k: int, kid_settings: Mapping[str, Any],
                     seed: int) -> dict[str, float]:
    from medsyn.metrics.fid import fid
    from medsyn.metrics.kid import kid
    from medsyn.metrics.prdc import prdc

    manifold = prdc(real, synthetic, k=k)
    kid_mean, _kid_std = kid(real, synthetic, subsets=kid_settings["subsets"],
                             subset_size=kid_settings["subset_size"], seed=seed)
    return {**{key: float(manifold[key]) for key in ("precision", "recall", "density", "coverage")},
            "fid": float(fid(real, synthetic)), "kid": kid_mean}


def _true_pair_scores(generator: Any, test: ImageSet) -> dict[str, float] | None:
    """Mean PSNR and SSIM between real test images and the generator's reconstructions of them (true pairs)."""
    reconstruct = getattr(generator, "reconstruct", None)
    if generator is None or not callable(reconstruct):
        return None
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    recon = reconstruct(test.images, test.labels).detach().float().clamp(0, 1).numpy()
    real = test.images.numpy()
    psnr, ssim = [], []
    for a, b in zip(real, recon):
        psnr.append(peak_signal_noise_ratio(a, b, data_range=1.0))
        ssim.append(structural_similarity(a, b, data_range=1.0, channel_axis=0))
    return {"psnr": float(sum(psnr) / len(psnr)), "ssim": float(sum(ssim) / len(ssim))}


def _run_settings(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """What a re-run into ``output_dir`` reuses (the real split, the per-seed generator checkpoints) depends
    on: the data split settings and each generator set's settings. Seeds may be added, scoring settings may
    change (results are recomputed) and steps may grow (checkpoints resume)."""
    from medsyn.models.registry import generator_settings

    data, sets = arguments["data"], arguments["synthetic_sets"]
    if not isinstance(data, Mapping) or not isinstance(sets, Mapping):
        return {"data": data, "synthetic_sets": sets}  # refused by run_assessment's own checks
    generators = {
        name: generator_settings(spec.get("model"), spec.get("config"))
        for name, spec in sets.items()
        if isinstance(spec, Mapping) and spec.get("kind") == "generator" and isinstance(spec.get("model"), str)
    }
    return {
        "data": {
            "kind": data.get("kind"),
            "options": dict(data.get("options") or {}),
            "per_class": data.get("per_class"),
            "split_seed": data.get("split_seed", 0),
        },
        "generators": generators,
    }


@strict_arguments(
    sections={
        "data": AssessmentData,
        "synthetic_sets": parse_synthetic_sets,
        "utility": UtilitySection,
        "robustness": RobustnessSection,
        "privacy": AssessmentPrivacy,
        "fidelity": FidelitySection,
        "speed": SpeedSection,
    }
)  # outermost: a bad config is refused before the output folder is touched
@writes_output_folder("output_dir", settings=_run_settings)
def run_assessment(
    output_dir: str,
    *,
    data: Mapping[str, Any],
    synthetic_sets: Mapping[str, Mapping[str, Any]],
    seeds: Sequence[int] = PAPER_SEEDS,
    utility: Mapping[str, Any] | None = None,
    robustness: Mapping[str, Any] | None = None,
    privacy: Mapping[str, Any] | None = None,
    fidelity: Mapping[str, Any] | None = None,
    speed: Mapping[str, Any] | None = None,
    progress: bool = True,
) -> Path:
    """Run the whole protocol; write results.json/.csv, figures, report.md and report.html; return report.md.

    output_dir: new, empty or written by run_assessment with the same data split and generator settings
        (``_run_settings``; otherwise refused before anything is written, naming the differing keys).

    data: {"kind", "options", "per_class", "split_seed"} (see ``medsyn.data.sources.prepare_splits``), plus
        "val_per_class" / "test_per_class" to evaluate on the first k images per class (quick runs only)
    synthetic_sets: name -> spec (module doc)
    seeds: at least 3 for a meaningful 90% interval
    utility: {"classifier": {"arch", "epochs", "batch_size", "lr", "top_k"}, "multipliers": [1, 2, 3]}
    robustness: {"steps": DeepFool steps (paper 000 §4.1.5: 5)}
    privacy: {"q", "repeats" (000 §4.1.6: 100, 10), "gallery_top", "dcr_feature_extractor",
              "empirical_epsilon": {"enabled", "n_queries", "samples_per_class", "k", "n_components",
              "isomap_neighbors"}}
    fidelity: {"extractors": ["effnet_lite0"], "domain": true, "inception_v3_weights", "vgg16_weights",
               "k": 3, "kid": {"subsets", "subset_size"}, "batch_size"}
    """
    from medsyn.data.sources import draw_splits
    from medsyn.data.split import save_split_manifest
    from medsyn.metrics.features import register_domain_extractor
    from medsyn.metrics.features.extract import extract_features
    from medsyn.metrics.features.registry import get_feature_extractor
    from medsyn.metrics.privacy import (
        distance_to_closest_record,
        minority_class_queries,
        privacy_gallery,
        run_empirical_epsilon_experiment,
        save_dcr_ecdf_plot,
        save_isomap_scatter,
        save_privacy_gallery,
        ssim_max_privacy,
    )
    from medsyn.metrics.statistics import aggregate_seeds
    from medsyn.metrics.utility import REGIMES, SYNTHETIC_REGIMES, check_utility_inputs, run_utility
    from medsyn.models.registry import build_generator
    from medsyn.report.assessment_figures import save_assessment_radar, save_regime_bars
    from medsyn.report.assessment_tables import flatten_for_csv, render_assessment_markdown
    from medsyn.report.html import markdown_to_html
    from medsyn.report.run_metadata import machine_description, package_versions

    started = time.perf_counter()
    # data, utility, ... arrive as complete dicts: @strict_arguments parsed them with the typed sections of
    # medsyn.config.sections (which hold every default), refusing unknown or ill-typed keys by path.
    seeds = _validate_seeds(seeds)
    classifier = parse_section(ClassifierSection, utility["classifier"], path="utility.classifier").as_mapping()
    multipliers = list(utility["multipliers"])
    max_multiplier = max(multipliers)
    steps = robustness["steps"]
    epsilon_settings = privacy["empirical_epsilon"]
    k = fidelity["k"]
    feature_batch = fidelity["batch_size"]
    kid_settings = fidelity["kid"]
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)

    # --- every input check, before any training -------------------------------------------------------------
    splits, split_manifest = draw_splits(data["kind"], dict(data["options"]), seed=data["split_seed"],
                                         per_class=data["per_class"])
    train, val, test = splits["train"], splits["val"], splits["test"]
    val = _limit_per_class(val, data["val_per_class"], "data.val_per_class")
    test = _limit_per_class(test, data["test_per_class"], "data.test_per_class")
    check_utility_inputs(train, val, test, None, regimes=_BASELINE_REGIMES, classifier=classifier)
    sources = _prepare_sources(synthetic_sets, train, max_multiplier)
    for source in sources:
        if source.fixed is not None:
            check_utility_inputs(train, val, test, source.fixed, regimes=SYNTHETIC_REGIMES,
                                 multipliers=multipliers, classifier=classifier)
    extractors = list(fidelity["extractors"])
    for name in extractors:
        get_feature_extractor(name)  # unknown name -> ValueError now
    extractors += _register_weight_extractors(fidelity)
    use_domain = fidelity["domain"]
    dcr_extractor = privacy["dcr_feature_extractor"]
    if dcr_extractor == FIRST_FIDELITY_EXTRACTOR:
        dcr_extractor = extractors[0] if extractors else None
    elif dcr_extractor is not None:
        get_feature_extractor(dcr_extractor)  # unknown name -> ValueError now
    if epsilon_settings["enabled"]:
        n_queries = epsilon_settings["n_queries"]
        minority_class_queries(train.labels, n_queries, seed=0)  # too many queries -> ValueError now
    save_split_manifest(split_manifest, output / "split_manifest.json")  # the first byte written

    # --- real features of the fixed extractors (real data never changes between seeds) ----------------------
    real_features = {name: extract_features(train.images, name, batch_size=feature_batch) for name in extractors}
    holdout_features = {}
    if dcr_extractor is not None:
        holdout_features[dcr_extractor] = extract_features(test.images, dcr_extractor, batch_size=feature_batch)
        if dcr_extractor not in real_features:
            real_features[dcr_extractor] = extract_features(train.images, dcr_extractor, batch_size=feature_batch)

    per_seed: dict[str, list[dict[str, Any]]] = {source.name: [] for source in sources}
    baseline_runs: list[dict[str, Any]] = []
    figures: dict[str, str] = {}
    notes: dict[str, dict[str, str]] = {source.name: {} for source in sources}
    seed_bar = tqdm(seeds, desc="assessment seeds", disable=not progress)
    for seed_position, seed in enumerate(seed_bar):
        first_seed = seed_position == 0
        baseline, baseline_models = run_utility(train, val, test, None, regimes=_BASELINE_REGIMES,
                                                classifier=classifier, seed=seed, robustness_steps=steps)
        baseline_runs.append(baseline)
        seed_extractors = list(extractors)
        seed_real = dict(real_features)
        if use_domain:
            register_domain_extractor(DOMAIN_EXTRACTOR, baseline_models["baseline_real"]["0x"],
                                      image_shape=train.image_shape)
            seed_real[DOMAIN_EXTRACTOR] = extract_features(train.images, DOMAIN_EXTRACTOR, batch_size=feature_batch)
            seed_extractors.append(DOMAIN_EXTRACTOR)

        for source in sources:
            model_dir = output / "models" / source.name
            synthetic = _synthetic_for_seed(source, train, seed, max_multiplier, model_dir, progress)
            synthetic_results, _models = run_utility(train, val, test, synthetic, regimes=SYNTHETIC_REGIMES,
                                                     multipliers=multipliers, classifier=classifier, seed=seed,
                                                     robustness_steps=steps)
            regime_results = {**baseline, **synthetic_results}
            utility_tree = {regime: {m: {"accuracy": e["accuracy"], "macro_f1": e["macro_f1"]}
                                     for m, e in regime_results[regime].items()} for regime in REGIMES}
            robustness_tree = {regime: {m: {"adversarial_accuracy": e["adversarial_accuracy"]}
                                        for m, e in regime_results[regime].items()} for regime in REGIMES}

            synthetic_features = {name: extract_features(synthetic.images, name, batch_size=feature_batch)
                                  for name in set(seed_extractors) | ({dcr_extractor} - {None})}
            index_1x = _first_per_class_index(synthetic, train.class_counts())
            fidelity_tree = {name: _fidelity_scores(seed_real[name], synthetic_features[name][index_1x], k,
                                                    kid_settings, seed) for name in seed_extractors}
            if use_domain:
                # IS needs p(y|x): the Baseline Real classifier provides it for this data set's classes
                probabilities = predict_logits(baseline_models["baseline_real"]["0x"],
                                               synthetic.images[index_1x]).softmax(dim=1)
                fidelity_tree["inception_score"] = {
                    DOMAIN_EXTRACTOR: inception_score(probabilities, splits=min(IS_SPLITS, len(index_1x)))[0]
                }
            speed_tree = {}
            if source.kind != "folder":
                # paper 000 §4.1.3: S = c / t of the generator that made this seed's synthetic set
                generator = source.trained[seed]
                speed_tree["sampling_speed"] = sampling_speed(
                    lambda labels, generator=generator, seed=seed: generator.sample(labels, seed=seed),
                    torch.arange(speed["count"]) % train.num_classes,
                    warmup=speed["warmup"],
                    repeats=speed["repeats"],
                )["value"]
            pairs = _true_pair_scores(source.trained.get(seed), test)
            if pairs is not None:
                fidelity_tree["true_pairs"] = pairs
            else:
                notes[source.name]["psnr_ssim_true_pairs"] = (
                    "skipped: PSNR/SSIM need true (real, reconstruction) pairs and this synthetic set has no "
                    "reconstruct method (only a VAE-style model exposing reconstruct(images, labels) has them)"
                )

            ssim_result = ssim_max_privacy(synthetic.images, train.images, q=privacy["q"],
                                           repeats=privacy["repeats"], seed=seed)
            dcr = {"pixel": distance_to_closest_record(synthetic.images, train.images, test.images, space="pixel")}
            if dcr_extractor is not None:
                dcr[dcr_extractor] = distance_to_closest_record(
                    synthetic_features[dcr_extractor], real_features[dcr_extractor],
                    holdout_features[dcr_extractor], space="features")
            privacy_tree: dict[str, Any] = {
                "ssim_max_paper": ssim_result["ssim_max_paper"]["value"],
                "ssim_max_full": ssim_result["ssim_max_full"]["value"],
                "dcr_ks": {space: r["dcr_ks"]["value"] for space, r in dcr.items()},
                "dcr_area": {space: r["dcr_area"]["value"] for space, r in dcr.items()},
            }
            set_dir = f"figures/{source.name}"
            if first_seed:
                for space, result in dcr.items():
                    path = f"{set_dir}/dcr_ecdf_{space}.png"
                    save_dcr_ecdf_plot(output / path, result, title=f"{source.name}: DCR ECDF ({space} space)")
                    figures[f"{source.name}: DCR ECDFs ({space} space, seed {seed})"] = path
                gallery = privacy_gallery(synthetic.images, train.images, ssim_result,
                                          top=privacy["gallery_top"])
                path = f"{set_dir}/privacy_gallery.png"
                save_privacy_gallery(output / path, gallery,
                                     title=f"{source.name}: highest max-SSIM synthetic images (top) and nearest training images")
                figures[f"{source.name}: privacy gallery (seed {seed})"] = path

            if source.kind == "generator" and epsilon_settings["enabled"]:
                epsilon = _empirical_epsilon(source, train, seed, epsilon_settings, model_dir, progress,
                                             build_generator, minority_class_queries,
                                             run_empirical_epsilon_experiment)
                privacy_tree["empirical_epsilon"] = epsilon["empirical_epsilon"]["value"]
                if first_seed:
                    path = f"{set_dir}/isomap_query.png"
                    save_isomap_scatter(output / path, epsilon, title=f"{source.name}: Isomap of real, victim, ablated and query")
                    figures[f"{source.name}: Isomap scatter with the query (seed {seed})"] = path
            else:
                notes[source.name]["empirical_epsilon"] = (
                    "not computed: it needs victim and ablated generators trained on neighbouring data sets, "
                    "possible only for synthetic sets of kind 'generator'"
                    if source.kind != "generator" else "disabled in the privacy config"
                )
            per_seed[source.name].append({"utility": utility_tree, "robustness": robustness_tree,
                                          "fidelity": fidelity_tree, "privacy": privacy_tree, **speed_tree})

    # --- aggregate over seeds, write results, figures, report -------------------------------------------------
    results: dict[str, Any] = {"synthetic_sets": {}}
    for source in sources:
        aggregated = _with_baselines_at_every_multiplier(aggregate_seeds(per_seed[source.name]))
        aggregated["kind"] = source.kind
        aggregated["not_computed"] = notes[source.name]
        aggregated["per_seed"] = per_seed[source.name]
        results["synthetic_sets"][source.name] = aggregated
    extractor_protocols = {
        name: {"feature_dim": get_feature_extractor(name).feature_dim, "input_size": get_feature_extractor(name).input_size}
        for name in extractors
    }
    if use_domain:
        extractor_protocols[DOMAIN_EXTRACTOR] = {
            "description": "penultimate layer of the seed's Baseline Real classifier "
                           f"({classifier['arch']}, trained on the real training split only)"
        }
    results["metadata"] = {
        "seeds": seeds,
        "n_seeds": len(seeds),
        "versions": package_versions(),
        "machine": machine_description(),
        "extractors": extractor_protocols,
        "config": {"data": data, "synthetic_sets": {s.name: s.spec for s in sources}, "utility": utility,
                   "robustness": robustness, "privacy": privacy, "fidelity": fidelity},
        "data": {"source": train.source, "image_shape": list(train.image_shape), "class_names": list(train.class_names),
                 "split_sizes": {"train": len(train), "val": len(val), "test": len(test)},
                 "train_class_counts": train.class_counts()},
        "protocol": {
            "utility": f"accuracy (top-{classifier['top_k']}) and macro F1 on the real test split; best "
                       "epoch by real validation loss; baselines use no synthetic images: keyed '0x' and repeated "
                       "under every multiplier, shared "
                       "by every synthetic set",
            "robustness": f"adversarial accuracy on DeepFool ({steps} steps) perturbed real test images",
            "fidelity": f"precision, recall, density, coverage (k={k}), FID, KID of the 1x synthetic subset "
                        "against the real training split",
            "privacy": "references are the generator's training members (real train); DCR holdout = real test; "
                       f"SSIM-max q={privacy['q']}, l={privacy['repeats']}",
            "split": "one split (data.split_seed) shared by every seed; generators retrained per seed",
            "statistics": "mean and Student-t 90% CI over seeds",
        },
        "wall_seconds": time.perf_counter() - started,
    }
    write_json_atomic(output / "results.json", results)
    write_text_atomic(output / "results.csv", flatten_for_csv(results))

    for metric, name, title in (("accuracy", "utility", "Utility"), ("adversarial_accuracy", "robustness", "Robustness")):
        path = f"figures/{name}_bars.png"
        save_regime_bars(output / path, results, section=name, metric=metric,
                         title=f"{title}: {metric.replace('_', ' ')} vs Baseline Real and Geometric DA")
        figures[f"{title} (paper 000 Fig. {5 if name == 'utility' else 6})"] = path
    radar_extractor = extractors[0] if extractors else DOMAIN_EXTRACTOR
    save_assessment_radar(output / "figures/radar.png", results, extractor=radar_extractor)
    figures = {"Radar (paper 000 Fig. 7)": "figures/radar.png", **figures}
    markdown = render_assessment_markdown(results, figures=figures)
    report_path = write_text_atomic(output / "report.md", markdown)
    write_text_atomic(output / "report.html", markdown_to_html(markdown, base_dir=output, title="medsyn assessment"))
    if progress:
        print(f"medsyn: assessment report written to {report_path.resolve()}")
    return report_path


def _with_baselines_at_every_multiplier(aggregated: dict[str, Any]) -> dict[str, Any]:
    """Repeat each baseline's ``0x`` entry under every multiplier key of the synthetic regimes.

    A baseline uses no synthetic image, so it is one classifier per seed; results.json keys every regime by
    ``1x``/``2x``/``3x`` (the comparison the paper's Figs. 5-6 draw) and keeps ``0x`` as the source entry.
    """
    for section in ("utility", "robustness"):
        regimes = aggregated.get(section, {})
        multipliers = sorted({key for regime, entries in regimes.items() if regime not in _BASELINE_REGIMES
                              for key in entries if key != "0x"})
        for regime in _BASELINE_REGIMES:
            if regime in regimes and "0x" in regimes[regime]:
                for key in multipliers:
                    regimes[regime].setdefault(key, copy.deepcopy(regimes[regime]["0x"]))
    return aggregated


def _limit_per_class(split: ImageSet, per_class: int | None, name: str) -> ImageSet:
    """The first ``per_class`` images of each class of ``split`` (all when None): a quick-run option only,
    the papers evaluate on the whole validation and test splits."""
    if per_class is None:
        return split
    if isinstance(per_class, bool) or not isinstance(per_class, int) or per_class < 1:
        raise ValueError(f"{name} must be a positive integer or null, got {per_class!r}")
    return split.subset(_first_per_class_index(split, [per_class] * split.num_classes))


def _first_per_class_index(synthetic: ImageSet, counts: list[int]) -> torch.Tensor:
    index = torch.cat([torch.nonzero(synthetic.labels == c).flatten()[:n] for c, n in enumerate(counts)])
    return torch.sort(index).values


def _empirical_epsilon(source, train, seed, settings, model_dir, progress, build_generator, minority_class_queries,
                       run_experiment) -> dict[str, Any]:
    """Paper 001 §3.2 for this seed: the victim is this seed's trained generator (no second training)."""

    def train_fn(train_set: ImageSet, fit_seed: int):
        if train_set is train and fit_seed in source.trained:
            return source.trained[fit_seed]
        generator = build_generator(source.spec["model"], num_classes=train.num_classes,
                                    image_shape=train.image_shape, **dict(source.spec.get("config") or {}))
        # named by the neighbouring set's description ("... minus sample i"), so a re-run resumes the same file
        digest = hashlib.sha1(train_set.source.encode("utf-8")).hexdigest()[:12]
        checkpoint = model_dir / f"seed{seed}" / f"ablated_{digest}.pt"
        generator.fit(train_set, checkpoint, seed=fit_seed, progress=progress)
        return generator

    queries = minority_class_queries(train.labels, settings["n_queries"], seed=seed)
    options = {key: settings[key] for key in ("k", "n_components", "isomap_neighbors")}
    return run_experiment(train, train_fn, query_indices=queries, seeds=[seed],
                          samples_per_class=settings["samples_per_class"], **options)
