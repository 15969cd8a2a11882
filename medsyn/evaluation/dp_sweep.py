"""The DP sweep of paper 001 (§3-4, Fig. 2, Table 1, Figs. 10-11) on the evaluation layer: for every seed a
fresh real split (``per_class`` training images per class, paper 001: 10) and for every sigma one generator
trained with DP-SGD (sigma = 0: plain training, 001 §3.1), then the same calls as the assessment with the
stages of the figures:

    FID                 ``fidelity.<extractor>.fid_holdout``: on ``extractor`` features, the synthetic set
                        against the HOLDOUT (the real test split, never seen by the generator) at matched
                        sizes: per class the first min(holdout, synthetic) images of each, so both sets have
                        the same count and class mix (001 Fig. 2); not against the training members, which
                        would reward memorisation at sigma 0
    inception_score     from the seed's Baseline Real classifier (trained on the real training split)
    unpaired_set        PSNR, SSIM (and LPIPS with a vgg16 weights file; else a not_computed note) of the
                        synthetic set against the holdout, paired class by class (001 Table 1)
    dcr_ks, dcr_area    DCR in pixel space: synthetic-to-members against holdout-to-members ECDFs (001 §3.2):
                        the KS statistic, the area between the ECDFs and ``dcr_area_normalised`` (the area over
                        the range of the pooled distances, in [0, 1]: 001 Fig. 11's normalised area)
    dp_epsilon          the (epsilon, delta)-DP guarantee of the trained generator (Opacus RDP accountant),
                        delta = 1 / (training-set size); null at sigma = 0 (no privacy, epsilon = inf)
    utility             Data Anonymization with ``utility_per_class`` synthetic images per class (001: 100;
                        the multiplier ``utility_per_class / per_class``): test accuracy on the REAL test
                        split of a classifier trained on the synthetic set only, best epoch on the REAL
                        validation split (001 §3.4); Baseline Real (real training split) beside it
    empirical_epsilon   (optional; 001 §3.2, Fig. 10(c)) two more generators (same sigma, seed and settings):
                        the victim on the training split without the query's class except one query, the
                        ablated twin without that class; both sample with seed + 2; the signed log density
                        ratio at the query, paper-code (no d) and with-d conventions (one query: worst = mean)

Each sigma is one synthetic set of the results schema (``sigma_<s>``, with ``dp``: sigma, max_grad_norm,
delta); files per run under ``seed_<k>/sigma_<s>/``: checkpoint.pt, synthetic.npz, the victim and ablated
generators. Each per-seed tree records ``empirical_epsilon_setup``: the query, its class and how it was
chosen, the neighbouring set sizes and the Isomap fit (points, seconds).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from medsyn.evaluation.feature_spaces import FeatureSpaces
from medsyn.evaluation.protocol import Protocol, RealData, aggregate_set, evaluate_for_seed, train_baselines
from medsyn.evaluation.stage_costs import StageCosts
from medsyn.evaluation.synthetic_sources import SyntheticSource
from medsyn.io.json_values import finite_or_none
from medsyn.training.dp_grid import sigma_name

__all__ = ["dp_settings_for_sigma", "epsilon_setup", "holdout_fid", "matched_holdout_indices", "run_dir_of",
           "sweep", "sweep_notes", "utility_multiplier"]

# The victim and ablated generators sample with seed + 2 (the scored synthetic set uses seed + 1).
_EPSILON_SAMPLING_OFFSET = 2


def dp_settings_for_sigma(sigma: float, max_grad_norm: float, num_train: int) -> dict[str, float] | None:
    """The ``dp`` training setting for one sigma: None for sigma = 0 (plain SGD, paper 001 §3.1), else
    {"noise_multiplier": sigma, "max_grad_norm": C, "delta": 1 / num_train} (delta from the training-set
    size, never from a fixed constant)."""
    if not isinstance(num_train, int) or num_train < 2:
        raise ValueError(f"num_train must be an integer >= 2 for delta = 1/num_train, got {num_train!r}")
    if sigma == 0:
        return None
    return {"noise_multiplier": float(sigma), "max_grad_norm": float(max_grad_norm), "delta": 1.0 / num_train}


def epsilon_setup(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The bookkeeping of one empirical-epsilon run (``empirical_epsilon_of_generator``'s summary) that a
    per-seed tree keeps: the query, its class and how it was chosen, the set sizes, the Isomap fit and its cost."""
    isomap = summary["isomap"]
    return {"query_index": summary["query_indices"][0], "query_class": summary["query_class"],
            "query_class_from": summary["query_class_from"], "victim_size": summary["victim_size"],
            "ablated_size": summary["ablated_size"],
            "isomap": {key: isomap[key] for key in ("fit_points", "real_images", "fit_seconds", "eigen_solver")}}


def utility_multiplier(utility_per_class: int, per_class: int | None) -> int:
    """The synthetic multiplier that gives ``utility_per_class`` synthetic images per class from ``per_class``
    training images per class (001 §3.4: 100 per class); ValueError when it is not a whole multiple."""
    if isinstance(utility_per_class, bool) or not isinstance(utility_per_class, int) or utility_per_class < 1:
        raise ValueError(f"utility_per_class must be a positive integer, got {utility_per_class!r}")
    if per_class is None:
        raise ValueError("utility_per_class needs per_class (training images per class) to set the synthetic "
                         "multiplier; per_class is null (all images)")
    if utility_per_class % per_class:
        raise ValueError(f"utility_per_class ({utility_per_class}) must be a multiple of per_class ({per_class}): "
                         "the synthetic set is a whole multiple of the training split")
    return utility_per_class // per_class


def matched_holdout_indices(holdout_labels: Any, synthetic_labels: Any) -> tuple[Any, Any]:
    """(holdout index, synthetic index), int64 [n] each: per class the first min(#holdout, #synthetic) images of
    each set, so both have the same count and class mix. ValueError when fewer than 2 images match."""
    import torch

    holdout_labels, synthetic_labels = torch.as_tensor(holdout_labels), torch.as_tensor(synthetic_labels)
    holdout_index, synthetic_index = [], []
    for label in torch.unique(holdout_labels).tolist():
        in_holdout = torch.nonzero(holdout_labels == label).flatten()
        in_synthetic = torch.nonzero(synthetic_labels == label).flatten()
        count = min(len(in_holdout), len(in_synthetic))
        holdout_index.append(in_holdout[:count])
        synthetic_index.append(in_synthetic[:count])
    holdout_index, synthetic_index = torch.cat(holdout_index), torch.cat(synthetic_index)
    if len(holdout_index) < 2:
        raise ValueError(f"FID needs >= 2 matched holdout/synthetic images, got {len(holdout_index)} "
                         "(no class present in both sets often enough)")
    return holdout_index, synthetic_index


def holdout_fid(holdout_features: Any, holdout_labels: Any, synthetic_features: Any, synthetic_labels: Any
                ) -> tuple[float, int]:
    """(FID, images per set) of synthetic features [m, d] against holdout features [n, d] at matched sizes
    (``matched_holdout_indices``), 001 Fig. 2."""
    from medsyn.metrics import fid

    holdout_index, synthetic_index = matched_holdout_indices(holdout_labels, synthetic_labels)
    return fid(holdout_features[holdout_index], synthetic_features[synthetic_index]), len(holdout_index)


def run_dir_of(output: Path, seed: int, sigma: float) -> Path:
    return output / f"seed_{seed}" / sigma_name(sigma)


def sweep(output: Path, *, data: Mapping[str, Any], model: str, model_config: Mapping[str, Any],
          sigmas: Sequence[float], seeds: Sequence[int], per_class: int | None, steps: int, batch_size: int,
          max_grad_norm: float, extractor: str, feature_batch_size: int, classifier: Mapping[str, Any],
          empirical_epsilon: Mapping[str, Any] | None, progress: bool, utility_per_class: int,
          vgg16_weights: str | None = None) -> dict[str, Any]:
    """Every (seed, sigma) run; returns {"synthetic_sets": sigma set name -> aggregated entry, "metadata":
    {"data", "started"}, "costs": time and memory per stage} for the workflow to complete."""
    from medsyn.data.sources import draw_splits
    from medsyn.data.split import save_split_manifest

    multiplier = utility_multiplier(utility_per_class, per_class)
    # FID is computed here against the holdout (fidelity_metrics off: the protocol's FID is against members);
    # domain: IS from Baseline Real; true_pairs: the unpaired-set PSNR / SSIM / LPIPS; dcr: pixel-space DCR
    protocol = Protocol(regimes=("baseline_real", "data_anonymization"), multipliers=(multiplier,),
                        classifier=dict(classifier), robustness=None, fidelity_metrics=(), domain=True,
                        true_pairs=True, dcr=True,
                        epsilon=None if empirical_epsilon is None else {**empirical_epsilon, "n_queries": 1},
                        epsilon_sampling_offset=_EPSILON_SAMPLING_OFFSET, save_synthetic=True)
    spaces = FeatureSpaces(names=(extractor,), dcr=None, batch_size=feature_batch_size,
                           objects=_vgg16_objects(vgg16_weights))
    per_seed: dict[float, list[dict[str, Any]]] = {sigma: [] for sigma in sigmas}
    notes: dict[float, dict[str, str]] = {sigma: {} for sigma in sigmas}
    deltas: dict[float, float | None] = {}
    bar = tqdm(total=len(seeds) * len(sigmas), desc="dp sweep", disable=not progress)
    described: dict[str, Any] = {}
    costs = StageCosts()
    for seed in seeds:
        with costs.stage("real data (read, split)"):
            splits, manifest = draw_splits(data["kind"], dict(data["options"]), seed=seed, per_class=per_class)
        train, val, test = splits["train"], splits["val"], splits["test"]
        sources = {sigma: SyntheticSource(sigma_name(sigma), "generator", {"model": model, "config": {
            **model_config, "steps": steps, "batch_size": batch_size,
            "dp": dp_settings_for_sigma(sigma, max_grad_norm, len(train))}}) for sigma in sigmas}
        if seed == seeds[0]:  # the model config against the data (image size, classes) before any write
            sources[sigmas[0]].build_generator(train)
        save_split_manifest(manifest, output / f"seed_{seed}" / "split_manifest.json")
        described = {"kind": data["kind"], "options": dict(data["options"]), "source": train.source,
                     "image_shape": list(train.image_shape), "class_names": list(train.class_names),
                     "split_sizes": {"train": len(train), "val": len(val), "test": len(test)}}
        with costs.stage("features"):
            real = RealData.prepare(train, val, test, spaces, protocol)
            holdout_features = spaces.extract(test.images, extractor)
        baseline = train_baselines(real, protocol, seed, costs)
        for sigma, source in sources.items():
            tree, set_notes, artefacts = evaluate_for_seed(real, source, protocol, seed, baseline,
                                                           run_dir=run_dir_of(output, seed, sigma), costs=costs)
            synthetic = artefacts["synthetic"]
            with costs.stage("fidelity: FID against the holdout") as work:
                value, matched = holdout_fid(holdout_features, test.labels,
                                             spaces.extract(synthetic.images, extractor), synthetic.labels)
                work.add(2 * matched)
            tree.setdefault("fidelity", {})[extractor] = {"fid_holdout": value}
            tree["privacy"]["dcr_area_normalised"] = {  # 001 Fig. 11: area / range of the pooled distances
                space: result["dcr_area"]["normalised"] for space, result in artefacts["dcr"].items()}
            tree["fid_reference"] = {"split": "test", "images_per_set": matched}
            dp = source.spec["config"]["dp"]
            tree.setdefault("privacy", {})["dp_epsilon"] = _dp_epsilon(source.trained[seed], dp, model)
            if "epsilon" in artefacts:
                tree["empirical_epsilon_setup"] = epsilon_setup(artefacts["epsilon"]["empirical_epsilon"])
            tree["seed"] = seed
            per_seed[sigma].append(tree)
            notes[sigma].update(set_notes)
            deltas[sigma] = None if dp is None else dp["delta"]
            bar.set_postfix_str(f"seed {seed} sigma {sigma:g}")
            bar.update(1)
    bar.close()
    sets = {}
    for sigma in sigmas:
        _no_bound_if_any_seed_unbounded(per_seed[sigma])
        sets[sigma_name(sigma)] = aggregate_set(
            per_seed[sigma], kind="generator", notes=notes[sigma],
            extra={"model": model, "dp": {"sigma": sigma, "max_grad_norm": float(max_grad_norm), "delta": deltas[sigma]}})
    return {"synthetic_sets": sets, "data": described, "costs": costs.as_metadata()}


def _vgg16_objects(vgg16_weights: str | None) -> dict[str, Any]:
    """{"vgg16": extractor} from a torchvision-format VGG16 weights file (LPIPS's backbone), {} without one."""
    if vgg16_weights is None:
        return {}
    from medsyn.metrics.features import weights_extractor

    if not Path(vgg16_weights).is_file():
        raise FileNotFoundError(f"vgg16_weights: weights file not found: {vgg16_weights}")
    try:
        return {"vgg16": weights_extractor("vgg16", vgg16_weights)}
    except ValueError as error:
        raise ValueError(f"vgg16_weights: {vgg16_weights} is not a vgg16 weights file: {error}") from error


def _dp_epsilon(generator: Any, dp: Mapping[str, float] | None, model: str) -> float | None:
    """The trained generator's epsilon at the sweep's delta; None without DP or when unbounded."""
    if dp is None:
        return None
    recorded = generator.metadata.get("dp", {})
    if recorded.get("delta") != dp["delta"]:
        raise RuntimeError(f"{model} trained with delta {recorded.get('delta')!r}, the sweep asked for {dp['delta']}")
    return finite_or_none(float(recorded["epsilon"]))


def _no_bound_if_any_seed_unbounded(trees: list[dict[str, Any]]) -> None:
    """epsilon is reported only when every seed has a finite one (else null: no guarantee over the seeds)."""
    if any(tree["privacy"]["dp_epsilon"] is None for tree in trees):
        for tree in trees:
            tree["privacy"]["dp_epsilon"] = None


def sweep_notes(extractor: str, *, empirical: bool) -> list[str]:
    """The notes results.json carries on how to read the sweep's numbers."""
    return [
        "sigma = 0 trains without DP-SGD (paper 001 §3.1): epsilon is unbounded and recorded as null.",
        "epsilon is the formal DP-SGD guarantee (Opacus RDP accountant) with delta = 1 / (training-set size); "
        "paper 001 Fig. 10(c) plots the empirical epsilon of §3.2"
        + (" (empirical_epsilon_* here: one query per run, so worst = mean; paper_code = ln(r_a/r_v) as the "
           "authors' code, with_d = the kNN log density ratio = d x paper_code; signed; Isomap fitted on real "
           "training images only)." if empirical else ", not measured in this run (empirical_epsilon: null)."),
        f"FID (fid_holdout) uses {extractor} features of the synthetic set against the holdout (the real test "
        "split, never seen by the generator) at matched sizes: per class the same number of images from each "
        "(001 Fig. 2); it is not comparable to published Inception FID.",
        "IS: from the seed's Baseline Real classifier. PSNR / SSIM / LPIPS: paper 001's unpaired set-level scores "
        "against the holdout, class by class (not true pairs). DCR: pixel space, synthetic-to-members against "
        "holdout-to-members (KS statistic, area between the ECDFs and that area normalised by the range of the "
        "pooled distances as in 001 Fig. 11).",
        "Utility: a classifier trained on the synthetic set only (utility_per_class images per class), best epoch "
        "on the real validation split, accuracy on the real test split.",
    ]
