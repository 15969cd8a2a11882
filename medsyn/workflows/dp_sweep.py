"""The DP sweep of paper 001 (§3, Fig. 10): fidelity, privacy and utility of a generator against the DP-SGD
noise multiplier sigma, over several seeds, with 90% confidence intervals.

For every seed: split the real data (``per_class`` training images per class, paper 001: 10), and for every
sigma train the generator with DP-SGD (sigma = 0: plain training, paper 001 §3.1 "for sigma = 0 we can
directly apply SGD"), sample a class-balanced synthetic set as large as the real training split and score
    FID        on ``extractor`` features, synthetic vs the real training split (same size, paper 001 §3.3)
    epsilon    the (epsilon, delta)-DP guarantee of the trained generator (Opacus RDP accountant),
               delta = 1 / (training-set size); None at sigma = 0 (no privacy, epsilon = inf)
    utility    test accuracy on the REAL test split of a classifier trained on the synthetic set only,
               best epoch chosen on the REAL validation split (paper 001 §3.4)
    empirical_epsilon (optional, what paper 001 Fig. 10(c) plots; §3.2): the trained generator is the
               victim; an ablated twin (same sigma, seed and settings) trains on the training split minus one
               minority-class query; |ln p_victim(x_q) / p_ablated(x_q)| by kNN density in an Isomap
               embedding fitted on the real training split (medsyn.metrics.privacy.empirical_epsilon)
then aggregate each metric over seeds with ``mean_ci90``.

Outputs in ``output_dir``: ``seed_<k>/split_manifest.json``, ``seed_<k>/sigma_<s>/checkpoint.pt`` and
``synthetic.npz`` per run, ``results.json``, ``dp_sweep.png`` (three panels, mean line + 90% CI band) and
``dp_sweep.md``. A killed sweep resumes from the checkpoints when run again.
"""

from __future__ import annotations

import io
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from medsyn.config.data import DataSection
from medsyn.config.generators import parse_generator_overrides
from medsyn.config.sections import PAPER_SEEDS, parse_classifier, parse_sweep_empirical_epsilon
from medsyn.config.strict import strict_arguments
from medsyn.data.image_set import ImageSet
from medsyn.io.atomic import write_bytes_atomic, write_json_atomic, write_text_atomic
from medsyn.io.output_folder import writes_output_folder
from medsyn.metrics.features.extract import DEFAULT_EXTRACTOR, FEATURE_BATCH_SIZE
from medsyn.report.dp_sweep_figure import save_dp_sweep_figure
from medsyn.report.run_metadata import machine_description, package_versions
from medsyn.training.settings import TRAINING_KEYS, DPSettings

__all__ = [
    "balanced_labels",
    "render_dp_sweep_markdown",
    "run_dp_sweep",
    "summarise_sweep",
    "sweep_dp_settings",
]

# Paper 001 §4 (Fig. 10): the noise multipliers of the sweep and the scarcity level.
PAPER_SIGMAS: tuple[float, ...] = (0.0, 0.05, 0.1, 0.2, 0.3, 0.4)
PAPER_PER_CLASS = 10


def sweep_dp_settings(sigma: float, max_grad_norm: float, num_train: int) -> dict[str, float] | None:
    """The ``dp`` training setting for one sigma: None for sigma = 0 (plain SGD, paper 001 §3.1), else
    {"noise_multiplier": sigma, "max_grad_norm": C, "delta": 1 / num_train} (delta from the training-set
    size, never from a fixed constant)."""
    if not isinstance(num_train, int) or num_train < 2:
        raise ValueError(f"num_train must be an integer >= 2 for delta = 1/num_train, got {num_train!r}")
    if sigma == 0:
        return None
    return {"noise_multiplier": float(sigma), "max_grad_norm": float(max_grad_norm), "delta": 1.0 / num_train}


def balanced_labels(num_classes: int, count: int) -> torch.Tensor:
    """int64 [count]: class indices as equal as possible (counts differ by at most one), sorted by class."""
    if num_classes < 1 or count < 1:
        raise ValueError(f"need num_classes >= 1 and count >= 1, got {num_classes}, {count}")
    return torch.sort(torch.arange(count, dtype=torch.int64) % num_classes).values


def _check_inputs(
    sigmas: Sequence[float],
    seeds: Sequence[int],
    steps: int,
    batch_size: int,
    max_grad_norm: float,
    per_class: int | None,
    model: str,
    model_config: Mapping[str, Any],
) -> list[float]:
    from medsyn.models.registry import generator_class

    if isinstance(sigmas, (str, bytes)) or not isinstance(sigmas, Sequence) or len(sigmas) == 0:
        raise ValueError(f"sigmas must be a non-empty list of noise multipliers >= 0, got {sigmas!r}")
    sigma_list = []
    for sigma in sigmas:
        if (
            isinstance(sigma, bool)
            or not isinstance(sigma, (int, float))
            or not math.isfinite(sigma)
            or sigma < 0
        ):
            raise ValueError(f"sigmas must be finite numbers >= 0, got {sigma!r} in {list(sigmas)}")
        sigma_list.append(float(sigma))
    if len(set(sigma_list)) != len(sigma_list):
        raise ValueError(f"sigmas must be distinct, got {sigma_list}")
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Sequence) or len(seeds) == 0:
        raise ValueError(f"seeds must be a non-empty list of integers, got {seeds!r}")
    all_integers = all(isinstance(seed, int) and not isinstance(seed, bool) for seed in seeds)
    if not all_integers or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct integers, got {list(seeds)}")
    for name, value in (("steps", steps), ("batch_size", batch_size)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if (
        isinstance(max_grad_norm, bool)
        or not isinstance(max_grad_norm, (int, float))
        or not max_grad_norm > 0
    ):
        raise ValueError(f"max_grad_norm must be > 0, got {max_grad_norm!r}")
    if per_class is not None and (
        not isinstance(per_class, int) or isinstance(per_class, bool) or per_class < 1
    ):
        raise ValueError(f"per_class must be a positive integer or null, got {per_class!r}")
    training_keys = sorted(set(model_config) & set(TRAINING_KEYS))
    if training_keys:
        raise ValueError(
            f"model_config must hold model keys only; {training_keys} are set by the sweep "
            "(steps, batch_size, max_grad_norm and sigmas are arguments of run_dp_sweep)"
        )
    generator_class(model)  # unknown model -> ValueError naming the registered ones
    return sorted(sigma_list)


def _sigma_dir_name(sigma: float) -> str:
    return f"sigma_{sigma:g}"


def _save_synthetic(path: Path, images: torch.Tensor, labels: torch.Tensor) -> None:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, images=images.numpy(), labels=labels.numpy())
    write_bytes_atomic(path, buffer.getvalue())


def summarise_sweep(
    sigmas: Sequence[float], runs: Sequence[Mapping[str, Any]], *, extractor: str
) -> list[dict[str, Any]]:
    """Per-seed runs -> one entry per sigma (in ``sigmas`` order):
    {"sigma", "fid": mean_ci90 + {"extractor"}, "epsilon": mean_ci90 + {"delta"} or None,
     "utility": mean_ci90 + {"metric"}} and, when every run has it, "empirical_epsilon": mean_ci90.

    runs: {"sigma", "seed", "fid", "epsilon" (float, or None when unbounded), "delta", "utility"} each
        (optionally "empirical_epsilon": float).
    epsilon is None for a sigma where any seed has no finite epsilon (sigma = 0: no privacy).
    """
    from medsyn.metrics.statistics import mean_ci90

    summary = []
    for sigma in sigmas:
        at_sigma = [run for run in runs if run["sigma"] == sigma]
        if not at_sigma:
            raise ValueError(f"no runs for sigma {sigma}")
        epsilons = [run["epsilon"] for run in at_sigma]
        if all(value is not None and math.isfinite(value) for value in epsilons):
            deltas = sorted({run["delta"] for run in at_sigma})
            epsilon_entry: dict[str, Any] | None = {
                **mean_ci90(epsilons),
                "delta": deltas[0] if len(deltas) == 1 else deltas,
            }
        else:
            epsilon_entry = None
        entry = {
            "sigma": sigma,
            "fid": {**mean_ci90([run["fid"] for run in at_sigma]), "extractor": extractor},
            "epsilon": epsilon_entry,
            "utility": {
                **mean_ci90([run["utility"] for run in at_sigma]),
                "metric": "test accuracy, classifier trained on synthetic only",
            },
        }
        if all("empirical_epsilon" in run for run in runs):
            entry["empirical_epsilon"] = {
                **mean_ci90([run["empirical_epsilon"] for run in at_sigma]),
                "estimator": "victim/ablated kNN density ratio in a real-data Isomap (paper 001 §3.2)",
            }
        summary.append(entry)
    return summary


def render_dp_sweep_markdown(results: Mapping[str, Any], figure_name: str = "dp_sweep.png") -> str:
    """The sweep's ``dp_sweep.md``: settings, one table row per sigma (mean [90% CI]), the figure, notes."""
    meta = results["metadata"]

    def cell(entry: Mapping[str, Any] | None, digits: int) -> str:
        if entry is None:
            return "inf (no privacy)"
        low, high = entry["ci90"]
        return f"{entry['mean']:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"

    lines = [
        f"# DP sweep: {meta['model']} (paper 001 Fig. 10)",
        "",
        (
            f"Data `{meta['data']['kind']}` ({meta['data']['source']}), {meta['per_class']} training images per "
            f"class ({meta['data']['split_sizes']['train']} in all), seeds {meta['seeds']}, {meta['steps']} steps "
            f"of batch {meta['batch_size']}, clipping bound C = {meta['max_grad_norm']}."
        ),
        "",
    ]
    empirical = all("empirical_epsilon" in entry for entry in results["by_sigma"])
    header = f"| sigma | FID ({meta['extractor']}) | epsilon (delta = 1/n_train) |"
    header += " empirical epsilon |" if empirical else ""
    lines += [header + " utility (accuracy) | seeds |", "|---" * (6 if empirical else 5) + "|"]
    for entry in results["by_sigma"]:
        row = f"| {entry['sigma']:g} | {cell(entry['fid'], 2)} | {cell(entry['epsilon'], 3)} |"
        row += f" {cell(entry['empirical_epsilon'], 3)} |" if empirical else ""
        lines.append(row + f" {cell(entry['utility'], 3)} | {entry['fid']['n_seeds']} |")
    lines += [
        "",
        "Values are the mean over seeds with the Student-t 90% confidence interval in brackets.",
        "",
        f"![FID, epsilon and utility against sigma]({figure_name})",
        "",
        "Notes:",
        *[f"- {note}" for note in meta["notes"]],
        "",
    ]
    return "\n".join(lines)


def _run_settings(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """What a re-run into ``output_dir`` reuses (each seed's split, each run's checkpoints) depends on: data,
    per_class, the generator (whole model config), batch_size and max_grad_norm. Seeds and sigmas may be
    added (their runs are separate folders) and steps may grow (checkpoints resume)."""
    from medsyn.models.registry import model_config_of

    data, model, model_config = arguments["data"], arguments["model"], arguments["model_config"] or {}
    training_keys = isinstance(model_config, Mapping) and set(model_config) & set(TRAINING_KEYS)
    return {
        "data": {"kind": data.get("kind"), "options": dict(data.get("options") or {})}
        if isinstance(data, Mapping)
        else data,
        "per_class": arguments["per_class"],
        "model": model,
        # training keys in model_config are refused by run_dp_sweep itself, with the reason
        "model_config": model_config if training_keys else model_config_of(model, model_config),
        "batch_size": arguments["batch_size"],
        "max_grad_norm": arguments["max_grad_norm"],
    }


@strict_arguments(
    sections={
        "data": DataSection,
        "classifier": parse_classifier,
        "empirical_epsilon": parse_sweep_empirical_epsilon,
    }
)  # outermost: a bad config is refused before the output folder is touched
@writes_output_folder("output_dir", settings=_run_settings)
def run_dp_sweep(
    output_dir: str,
    *,
    data: Mapping[str, Any],
    model: str = "cvae",
    model_config: Mapping[str, Any] | None = None,
    sigmas: Sequence[float] = PAPER_SIGMAS,
    seeds: Sequence[int] = PAPER_SEEDS,
    per_class: int | None = PAPER_PER_CLASS,
    steps: int,
    batch_size: int,
    max_grad_norm: float = DPSettings.max_grad_norm,
    extractor: str = DEFAULT_EXTRACTOR,
    feature_batch_size: int = FEATURE_BATCH_SIZE,
    classifier: Mapping[str, Any],
    empirical_epsilon: Mapping[str, int] | None = None,
    progress: bool = True,
) -> Path:
    """Run the sweep; return the path of ``dp_sweep.md`` (``results.json`` and ``dp_sweep.png`` beside it).

    output_dir: new, empty or written by run_dp_sweep with the same data-affecting settings
        (``_run_settings``; otherwise refused before anything is written, naming the differing keys).

    data: {"kind": source name, "options": {...}} (see medsyn.data.sources); per_class: k training images
        per class (paper 001: 10) or None for the whole training split.
    model, model_config: a registered generator and its model-config overrides (no training keys).
    sigmas: DP-SGD noise multipliers (paper 001: 0, 0.05, 0.1, 0.2, 0.3, 0.4); 0 trains without DP.
    steps, batch_size: generator training (under DP: expected Poisson batch size); max_grad_norm: C.
    classifier: {"arch", "epochs", "batch_size", "lr"} of the utility classifier.
    empirical_epsilon: None, or {"samples_per_class": synthetic images per class from the victim and the
        ablated generator, "k", "n_components", "isomap_neighbors"} to also measure paper 001's empirical
        epsilon (trains one more generator per sigma and seed).
    """
    from medsyn.data.sources import draw_splits
    from medsyn.data.split import save_split_manifest
    from medsyn.metrics import fid
    from medsyn.metrics.features.extract import extract_features
    from medsyn.metrics.privacy.empirical_epsilon import empirical_epsilon as empirical_epsilon_of
    from medsyn.metrics.privacy.empirical_epsilon import minority_class_queries
    from medsyn.models.classifier_training import evaluate_classifier, train_classifier
    from medsyn.models.registry import build_generator

    # data, classifier and empirical_epsilon arrive complete: @strict_arguments parsed them with the typed
    # sections of medsyn.config.sections (defaults filled in, unknown or ill-typed keys refused by path).
    model_config = dict(model_config or {})
    sigma_list = _check_inputs(
        sigmas, seeds, steps, batch_size, max_grad_norm, per_class, model, model_config
    )
    model_config = parse_generator_overrides(model, model_config, path="model_config", training_keys=False)
    empirical_settings = empirical_epsilon
    output_path = Path(output_dir)
    output_path.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    overall = tqdm(total=len(seeds) * len(sigma_list), desc="dp sweep", disable=not progress, position=0)

    runs: list[dict[str, Any]] = []
    split_sizes: dict[str, int] = {}
    source_name = ""
    for seed in seeds:
        seed_dir = output_path / f"seed_{seed}"
        splits, split_manifest = draw_splits(
            data["kind"], dict(data.get("options", {})), seed=seed, per_class=per_class
        )
        train, val, test = splits["train"], splits["val"], splits["test"]
        if seed == seeds[0]:  # the model config against the data (image size, classes) before any write
            build_generator(model, num_classes=train.num_classes, image_shape=train.image_shape, **model_config)
        save_split_manifest(split_manifest, seed_dir / "split_manifest.json")
        split_sizes = {"train": len(train), "val": len(val), "test": len(test)}
        source_name = train.source
        real_features = extract_features(train.images, extractor, batch_size=feature_batch_size)
        labels = balanced_labels(train.num_classes, len(train))
        for sigma in sigma_list:
            run_dir = seed_dir / _sigma_dir_name(sigma)
            dp = sweep_dp_settings(sigma, max_grad_norm, len(train))
            generator = build_generator(
                model,
                num_classes=train.num_classes,
                image_shape=train.image_shape,
                **model_config,
                steps=steps,
                batch_size=batch_size,
                dp=dp,
            )
            fit_started = time.perf_counter()
            generator.fit(train, run_dir / "checkpoint.pt", seed=seed, progress=False)
            fit_seconds = time.perf_counter() - fit_started
            epsilon = None
            if dp is not None:
                dp_metadata = generator.metadata.get("dp", {})
                if dp_metadata.get("delta") != dp["delta"]:
                    raise RuntimeError(
                        f"{model} trained with delta {dp_metadata.get('delta')!r}, the sweep asked for {dp['delta']}"
                    )
                value = float(dp_metadata["epsilon"])
                epsilon = value if math.isfinite(value) else None

            synthetic_images = generator.sample(labels, seed=seed + 1).float().contiguous()
            _save_synthetic(run_dir / "synthetic.npz", synthetic_images, labels)
            synthetic = ImageSet(
                synthetic_images,
                labels.clone(),
                train.class_names,
                f"{model} sigma={sigma:g} seed={seed} samples",
            )
            synthetic_features = extract_features(synthetic.images, extractor, batch_size=feature_batch_size)
            utility_model, _history = train_classifier(
                synthetic,
                val,
                arch=classifier["arch"],
                epochs=classifier["epochs"],
                batch_size=classifier["batch_size"],
                lr=classifier["lr"],
                seed=seed,
                augment=False,
                progress=False,
            )
            run: dict[str, Any] = {}
            if empirical_settings is not None:
                # The ablated twin: same sigma, seed and settings, trained without the query (paper 001 §3.2).
                query_index = minority_class_queries(train.labels, 1, seed)[0]
                keep = torch.ones(len(train), dtype=torch.bool)
                keep[query_index] = False
                neighbour = ImageSet(
                    train.images[keep],
                    train.labels[keep],
                    train.class_names,
                    f"{train.source} minus training sample {query_index}",
                )
                ablated = build_generator(
                    model,
                    num_classes=train.num_classes,
                    image_shape=train.image_shape,
                    **model_config,
                    steps=steps,
                    batch_size=batch_size,
                    dp=dp,
                )
                ablated.fit(neighbour, run_dir / "ablated_checkpoint.pt", seed=seed, progress=False)
                density_labels = torch.arange(train.num_classes).repeat_interleave(
                    empirical_settings["samples_per_class"]
                )
                measured = empirical_epsilon_of(
                    train.images,
                    train.images[query_index : query_index + 1],
                    [generator.sample(density_labels, seed=seed + 2)],
                    [ablated.sample(density_labels, seed=seed + 2)],
                    k=empirical_settings["k"],
                    n_components=empirical_settings["n_components"],
                    isomap_neighbors=empirical_settings["isomap_neighbors"],
                )
                run["empirical_epsilon"] = measured["empirical_epsilon"]["value"]
                run["query_index"] = int(query_index)
            runs.append(
                {
                    **run,
                    "sigma": sigma,
                    "seed": seed,
                    "fid": fid(real_features, synthetic_features),
                    "epsilon": epsilon,
                    "delta": None if dp is None else dp["delta"],
                    "utility": evaluate_classifier(utility_model, test)["accuracy"],
                    "n_train": len(train),
                    "n_synthetic": len(synthetic),
                    "fit_seconds": fit_seconds,
                }
            )
            overall.set_postfix_str(f"seed {seed} sigma {sigma:g}")
            overall.update(1)
    overall.close()

    results = {
        "by_sigma": summarise_sweep(sigma_list, runs, extractor=extractor),
        "runs": runs,
        "metadata": {
            "model": model,
            "model_config": model_config,
            "sigmas": sigma_list,
            "seeds": list(seeds),
            "per_class": per_class,
            "steps": steps,
            "batch_size": batch_size,
            "max_grad_norm": max_grad_norm,
            "extractor": extractor,
            "classifier": dict(classifier),
            "empirical_epsilon": empirical_settings,
            "data": {
                "kind": data["kind"],
                "options": dict(data.get("options", {})),
                "source": source_name,
                "split_sizes": split_sizes,
            },
            "versions": package_versions(),
            "machine": machine_description(),
            "wall_seconds": time.perf_counter() - started,
            "notes": [
                "sigma = 0 trains without DP-SGD (paper 001 §3.1): epsilon is unbounded and recorded as null.",
                (
                    "epsilon is the formal DP-SGD guarantee (Opacus RDP accountant) with delta = 1 / "
                    "(training-set size); paper 001 Fig. 10(c) plots the empirical epsilon of §3.2"
                )
                + (
                    " (empirical_epsilon here: Isomap fitted on the real training split only)."
                    if empirical_settings is not None
                    else ", not measured in this run (empirical_epsilon: null)."
                ),
                (
                    f"FID uses {extractor} features against the real training split (same size as the synthetic "
                    "set); it is not comparable to published Inception FID."
                ),
                (
                    "Utility: a classifier trained on the synthetic set only, best epoch on the real validation "
                    "split, accuracy on the real test split."
                ),
            ],
        },
    }
    write_json_atomic(output_path / "results.json", results)
    save_dp_sweep_figure(
        output_path / "dp_sweep.png",
        sigma_list,
        {
            key: [entry[key] for entry in results["by_sigma"]]
            for key in ("fid", "epsilon", "empirical_epsilon", "utility")
            if key in results["by_sigma"][0]
        },
        title=f"{model}: {per_class} images per class, {len(seeds)} seeds (mean, 90% CI)",
    )
    report_path = write_text_atomic(output_path / "dp_sweep.md", render_dp_sweep_markdown(results))
    print(f"medsyn: DP sweep written to {report_path.resolve()}")
    return report_path
