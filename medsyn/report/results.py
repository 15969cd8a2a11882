"""The results document, schema version 2: what every workflow (assessment, quickstart, DP sweep) writes to
``results.json`` and what every report reads. This docstring is the schema's documentation.

Top level::

    {"schema_version": 2, "workflow": "assessment" | "quickstart" | "dp_sweep",
     "synthetic_sets": {<set name>: <set entry>, ...},  # at least one
     "metadata": {...}}

A *statistic* ``S`` is a metric over seeds, ``{"mean": float, "ci90": [low, high], "n_seeds": int}``
(``medsyn.metrics.statistics.mean_ci90``: Student-t 90% interval; one seed gives ``[mean, mean]``). A
bounded metric (a range in ``metric_catalog.VALUE_RANGES``: accuracy, precision, SSIM, ...) carries a fourth
key ``"ci_method": "bootstrap_percentile"``: its interval is the bootstrap percentile interval of the mean
over seeds and lies inside the metric's range (checked here); no ``ci_method`` = Student-t. Every
number in a statistic is finite.

A set entry (every section and every key inside one is optional unless said otherwise; a section a workflow
does not compute is absent, never filled with placeholders):

- ``kind`` (required): ``"generator"`` (trained here), ``"checkpoint"`` (a saved generator) or ``"folder"``
  (external images). ``model``: the registered generator name, for generator and checkpoint sets.
- ``dp`` (DP sweep only, required there, absent otherwise): ``{"sigma": float >= 0, "max_grad_norm": float,
  "delta": float | null}``; ``delta`` is null at sigma 0 (plain SGD, no accountant).
- ``utility``: ``{regime: {multiplier: {"accuracy": S, "macro_f1": S}}}``; regimes ``baseline_real``,
  ``geometric_da`` (no synthetic image: keyed ``"0x"`` and repeated under every multiplier key of the
  synthetic regimes) and ``data_anonymization``, ``synthetic_da``, ``combined_da`` keyed ``"1x"``,
  ``"2x"``, ... Which regimes are present depends on the workflow (the quickstart: ``baseline_real`` and
  ``data_anonymization`` at 1x; the DP sweep: ``baseline_real`` and ``data_anonymization`` at
  ``<utility_per_class / per_class>x``, e.g. ``"10x"`` for 001's 100 synthetic images per class).
- ``robustness``: ``{regime: {multiplier: {"adversarial_accuracy": S}}}``, the same keys as utility. With
  ``utility.classifier.top_k`` k > 1 (paper 000 §5.2: 3 for CheXpert) utility also holds ``"top<k>_accuracy"`` and
  robustness ``"top<k>_adversarial_accuracy"`` (e.g. ``"top3_accuracy"``); ``accuracy`` stays top-1.
- ``fidelity``: ``{extractor: {"precision", "recall", "density", "coverage", "fid", "kid", "fid_holdout": S}}``
  per feature extractor (``fid``: against the real training split; ``fid_holdout``, the DP sweep's: against
  the holdout = real test split at matched sizes, paper 001 Fig. 2), ``"inception_score": {classifier: S}``, ``"true_pairs": {"psnr", "ssim", "lpips": S}``
  (real test images vs their reconstructions) and ``"unpaired_set": {"psnr", "ssim", "lpips": S}`` (paper 001's
  class-matched pairs with no correspondence); ``"lpips"`` only with a VGG16 weights file.
- ``privacy``: ``"ssim_max_paper"``, ``"ssim_max_full"``, ``"dcr_ks": {space: S}``, ``"dcr_area": {space:
  S}``, ``"empirical_epsilon_<worst|mean>_<paper_code|with_d>"``: S (signed; worst/mean over the queries;
  paper_code = ln(r_a/r_v), with_d = d times that, paper 001 §3.2), and ``"dp_epsilon"``: S or null (null:
  no finite DP guarantee, e.g. sigma 0).
- ``sampling_speed``: S (samples per second; absent for folder sets).
- ``not_computed``: ``{metric: reason}``, why a metric the workflow would compute is missing for this set.
- ``per_seed``: one tree per seed with the sections above holding plain numbers (plus bookkeeping such as
  ``seed``); every number finite, null only at ``privacy.dp_epsilon``.

Metric names are those of ``medsyn.report.metric_catalog`` (``metric_name_of`` maps a key path to its
catalogue entry); an unknown metric is refused. ``metadata`` holds ``seeds``, ``n_seeds``, ``versions``,
``machine``, ``config``, ``data`` (``source``, ``image_shape``, ``class_names``, ``split_sizes``, ...),
``protocol`` (topic -> what was measured, in words), ``extractors`` (name -> description),
``wall_seconds`` and optionally ``notes`` (list of strings); workflows may add keys (the DP sweep records
its training settings there).

The DP sweep (``workflow: "dp_sweep"``, one set ``sigma_<s>`` per noise multiplier, paper 001 Fig. 2 and
Table 1) has per set: ``dp``; ``fidelity.<extractor>.fid_holdout``, ``fidelity.inception_score.
domain_baseline_real``, ``fidelity.unpaired_set.{psnr, ssim[, lpips]}`` (no ``lpips`` without
``vgg16_weights``: ``not_computed.lpips`` says why); ``privacy.{dp_epsilon, dcr_ks.pixel, dcr_area.pixel,
dcr_area_normalised.pixel, empirical_epsilon_*}``; ``utility.{baseline_real, data_anonymization}``; each per-seed tree adds ``seed``,
``fid_reference`` (``{"split": "test", "images_per_set": n}``: the matched size) and, with the empirical
epsilon, ``empirical_epsilon_setup``. Its metadata adds ``sigmas``, ``per_class``, ``steps``,
``batch_size``, ``max_grad_norm``, ``extractor``, ``classifier``, ``empirical_epsilon``,
``utility_per_class`` and ``vgg16_weights``.

Example (a quickstart, one seed, abridged)::

    {"schema_version": 2, "workflow": "quickstart",
     "synthetic_sets": {"cvae": {
         "kind": "generator", "model": "cvae",
         "utility": {"baseline_real": {"0x": {"accuracy": S, "macro_f1": S}, "1x": {...same...}},
                     "data_anonymization": {"1x": {"accuracy": S, "macro_f1": S}}},
         "fidelity": {"effnet_lite0": {"precision": S, "recall": S, "fid": S}},
         "privacy": {"ssim_max_paper": S, "ssim_max_full": S},
         "sampling_speed": S,
         "not_computed": {"empirical_epsilon": "disabled in the privacy config"},
         "per_seed": [{"utility": {...plain numbers...}, "seed": 0}]}},
     "metadata": {"seeds": [0], "n_seeds": 1, "data": {"source": "digits", ...}, ...}}

    S = {"mean": 0.81, "ci90": [0.81, 0.81], "n_seeds": 1}

``validate_results`` checks all of this and names the key path of the first bad entry; ``write_results``
validates, then writes ``results.json`` and the flat ``results.csv`` atomically.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from medsyn.io.atomic import write_json_atomic, write_text_atomic
from medsyn.report.metric_catalog import SYNTHETIC_REGIMES, metric_name_of, value_range_of

__all__ = ["METRIC_SECTIONS", "SCHEMA_VERSION", "SET_KINDS", "WORKFLOWS", "baseline_entry", "flatten_for_csv",
           "is_statistic", "multiplier_keys", "validate_results", "write_results"]

SCHEMA_VERSION = 2
WORKFLOWS = ("assessment", "quickstart", "dp_sweep")
SET_KINDS = ("generator", "checkpoint", "folder")
METRIC_SECTIONS = ("utility", "robustness", "fidelity", "privacy", "sampling_speed")
_SET_KEYS = ("kind", "model", "dp", *METRIC_SECTIONS, "not_computed", "per_seed")
_NULLABLE = "privacy.dp_epsilon"


def is_statistic(value: Any) -> bool:
    """True for a mapping shaped like ``mean_ci90``'s result (the leaves of the metric sections)."""
    return isinstance(value, Mapping) and "mean" in value


def _is_finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_statistic(value: Mapping[str, Any], where: str, path: str = "") -> None:
    if set(value) - {"ci_method"} != {"mean", "ci90", "n_seeds"}:
        raise ValueError(f"{where} must be a statistic with exactly the keys ['ci90', 'mean', 'n_seeds'] "
                         f"and optionally 'ci_method', got {sorted(value)}")
    if "ci_method" in value and value["ci_method"] != "bootstrap_percentile":
        raise ValueError(f"{where}.ci_method must be 'bootstrap_percentile', got {value['ci_method']!r}")
    if not _is_finite_number(value["mean"]):
        raise ValueError(f"{where}.mean must be a finite number, got {value['mean']!r}")
    interval = value["ci90"]
    if (not isinstance(interval, (list, tuple)) or len(interval) != 2
            or not all(_is_finite_number(bound) for bound in interval) or interval[0] > interval[1]):
        raise ValueError(f"{where}.ci90 must be [low, high] with finite low <= high, got {interval!r}")
    seeds = value["n_seeds"]
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"{where}.n_seeds must be a positive integer, got {seeds!r}")
    value_range = value_range_of(path) if path and "ci_method" in value else None
    if value_range is not None and not value_range[0] <= interval[0] <= interval[1] <= value_range[1]:
        raise ValueError(f"{where}.ci90 {list(interval)} leaves the metric's range {list(value_range)}")


def _check_metrics(node: Any, path: str, where: str) -> None:
    """``node`` at key path ``path`` inside a set's metric sections: a statistic, or a mapping of them."""
    if path == _NULLABLE and node is None:
        return
    if is_statistic(node):
        _metric_name(path, where)
        _check_statistic(node, where, path)
        return
    if not isinstance(node, Mapping) or not node:
        raise ValueError(f"{where} must be a statistic {{mean, ci90, n_seeds}} or a non-empty mapping of them, "
                         f"got {node!r:.80}")
    for key, child in node.items():
        _check_metrics(child, f"{path}.{key}", f"{where}[{key!r}]")


def _metric_name(path: str, where: str) -> None:
    try:
        metric_name_of(path)
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None


def _check_per_seed_leaf(node: Any, path: str, where: str) -> None:
    if isinstance(node, Mapping):
        for key, child in node.items():
            _check_per_seed_leaf(child, f"{path}.{key}" if path else str(key), f"{where}[{key!r}]")
    elif isinstance(node, (list, tuple)):
        for index, child in enumerate(node):
            _check_per_seed_leaf(child, f"{path}.{index}", f"{where}[{index}]")
    elif node is None:
        if path != _NULLABLE:
            raise ValueError(f"{where} is null; only {_NULLABLE} may be null")
    elif not (isinstance(node, str) or _is_finite_number(node)):
        raise ValueError(f"{where} must be a finite number or a string, got {node!r}")


def _check_dp(dp: Any, where: str) -> None:
    if not isinstance(dp, Mapping) or set(dp) != {"sigma", "max_grad_norm", "delta"}:
        raise ValueError(f"{where} must be {{'sigma', 'max_grad_norm', 'delta'}}, got {dp!r:.120}")
    if not _is_finite_number(dp["sigma"]) or dp["sigma"] < 0:
        raise ValueError(f"{where}['sigma'] must be a finite number >= 0, got {dp['sigma']!r}")
    if not _is_finite_number(dp["max_grad_norm"]) or dp["max_grad_norm"] <= 0:
        raise ValueError(f"{where}['max_grad_norm'] must be a finite number > 0, got {dp['max_grad_norm']!r}")
    if dp["delta"] is not None and not _is_finite_number(dp["delta"]):
        raise ValueError(f"{where}['delta'] must be a finite number or null, got {dp['delta']!r}")


def _check_set(entry: Any, workflow: str, where: str) -> None:
    if not isinstance(entry, Mapping):
        raise ValueError(f"{where} must be a mapping, got {type(entry).__name__}")
    unknown = sorted(set(entry) - set(_SET_KEYS))
    if unknown:
        raise ValueError(f"{where} has unknown keys {unknown}; a synthetic set holds {list(_SET_KEYS)}")
    if entry.get("kind") not in SET_KINDS:
        raise ValueError(f"{where}['kind'] must be one of {list(SET_KINDS)}, got {entry.get('kind')!r}")
    if "model" in entry and not isinstance(entry["model"], str):
        raise ValueError(f"{where}['model'] must be a string, got {entry['model']!r}")
    if workflow == "dp_sweep":
        if "dp" not in entry:
            raise ValueError(f"{where} has no 'dp' settings; every set of a dp_sweep has them")
        _check_dp(entry["dp"], f"{where}['dp']")
    elif "dp" in entry:
        raise ValueError(f"{where} has 'dp' settings but the workflow is {workflow!r}; only a dp_sweep has them")
    for section in METRIC_SECTIONS:
        if section in entry:
            _check_metrics(entry[section], section, f"{where}[{section!r}]")
    reasons = entry.get("not_computed", {})
    if not isinstance(reasons, Mapping) or not all(isinstance(v, str) for v in reasons.values()):
        raise ValueError(f"{where}['not_computed'] must map metric names to reason strings, got {reasons!r:.120}")
    per_seed = entry.get("per_seed", [])
    if not isinstance(per_seed, list) or not all(isinstance(tree, Mapping) for tree in per_seed):
        raise ValueError(f"{where}['per_seed'] must be a list of per-seed mappings")
    for index, tree in enumerate(per_seed):
        _check_per_seed_leaf(tree, "", f"{where}['per_seed'][{index}]")


def validate_results(results: Mapping[str, Any]) -> None:
    """Raise ValueError naming the key path of the first entry that breaks schema version 2 (this module's
    docstring); return None for a valid document."""
    if not isinstance(results, Mapping):
        raise ValueError(f"results must be a mapping, got {type(results).__name__}")
    version = results.get("schema_version")
    if version != SCHEMA_VERSION or isinstance(version, bool):
        found = "no schema_version" if "schema_version" not in results else f"schema_version {version!r}"
        raise ValueError(f"results: expected schema_version {SCHEMA_VERSION}, found {found} "
                         "(scripts/compare_results.py reads older files)")
    if results.get("workflow") not in WORKFLOWS:
        raise ValueError(f"results['workflow'] must be one of {list(WORKFLOWS)}, got {results.get('workflow')!r}")
    unknown = sorted(set(results) - {"schema_version", "workflow", "synthetic_sets", "metadata"})
    if unknown:
        raise ValueError(f"results has unknown top-level keys {unknown}")
    sets = results.get("synthetic_sets")
    if not isinstance(sets, Mapping) or not sets:
        raise ValueError("results['synthetic_sets'] must be a non-empty mapping of set name -> entry")
    for name, entry in sets.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"results['synthetic_sets'] has a set named {name!r}; names are non-empty strings")
        _check_set(entry, results["workflow"], f"results['synthetic_sets'][{name!r}]")
    metadata = results.get("metadata")
    if not isinstance(metadata, Mapping):
        raise ValueError(f"results['metadata'] must be a mapping, got {type(metadata).__name__}")
    notes = metadata.get("notes", [])
    if not isinstance(notes, list) or not all(isinstance(note, str) for note in notes):
        raise ValueError("results['metadata']['notes'] must be a list of strings")


def multiplier_keys(results: Mapping[str, Any], section: str) -> list[str]:
    """The multiplier keys ("1x", "2x", ...) of the synthetic regimes in ``section`` of any set, ascending."""
    keys = {key for entry in results["synthetic_sets"].values() for regime in SYNTHETIC_REGIMES
            for key in entry.get(section, {}).get(regime, {})}
    return sorted(keys, key=lambda key: int(key.rstrip("x")))


def baseline_entry(results: Mapping[str, Any], section: str, regime: str) -> Mapping[str, Any] | None:
    """A baseline's metrics (shared by every set: no synthetic image) from the first set that has them."""
    for entry in results["synthetic_sets"].values():
        keyed = entry.get(section, {}).get(regime)
        if keyed:
            return keyed.get("0x") or next(iter(keyed.values()))
    return None


def flatten_for_csv(results: Mapping[str, Any]) -> str:
    """results.csv: one row per statistic, columns synthetic_set, metric (its dotted key path inside the set),
    mean, ci90_low, ci90_high, n_seeds; per_seed trees and null entries are left out."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["synthetic_set", "metric", "mean", "ci90_low", "ci90_high", "n_seeds"])

    def walk(set_name: str, node: Mapping[str, Any], path: str) -> None:
        for key, value in node.items():
            child = f"{path}.{key}" if path else str(key)
            if is_statistic(value):
                writer.writerow([set_name, child, repr(value["mean"]), repr(value["ci90"][0]),
                                 repr(value["ci90"][1]), value["n_seeds"]])
            elif isinstance(value, Mapping):
                walk(set_name, value, child)

    for set_name, entry in results.get("synthetic_sets", {}).items():
        walk(set_name, {section: entry[section] for section in METRIC_SECTIONS if section in entry}, "")
    return buffer.getvalue()


def write_results(output_dir: str | os.PathLike, results: Mapping[str, Any]) -> dict[str, Path]:
    """Validate, then write ``results.json`` and ``results.csv`` (:func:`flatten_for_csv`) atomically into
    ``output_dir``. Returns {"json": path, "csv": path}; nothing is written when validation fails."""
    validate_results(results)
    output_dir = Path(output_dir)
    return {
        "json": write_json_atomic(output_dir / "results.json", results),
        "csv": write_text_atomic(output_dir / "results.csv", flatten_for_csv(results)),
    }
