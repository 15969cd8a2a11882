"""Compare every non-timing number of two medsyn ``results.json`` files, across schema versions.

    python scripts/compare_results.py OLD/results.json NEW/results.json

Each file is read into canonical keys ``<synthetic set>/<dotted path>`` of the results schema version 2
(``medsyn.report.results``): a schema-2 file as it is; an older file by its layout (the quickstart's
``models``, the DP sweep's ``by_sigma`` + ``runs``, the assessment's ``synthetic_sets``). Timing numbers
(sampling speed, wall and fit seconds) and metadata are left out. Every number of OLD must be in NEW with
the same key and bit-identical value; numbers only NEW has are listed as additions. Exit status 1 on any
difference, with each one printed.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

_TIMING = ("sampling_speed", "wall_seconds", "fit_seconds")
_QUICKSTART_V1 = {
    "utility_real_baseline": "utility.baseline_real.0x.accuracy",
    "utility_synthetic_only": "utility.data_anonymization.1x.accuracy",
    "robustness_real_baseline": "robustness.baseline_real.0x.adversarial_accuracy",
    "robustness_synthetic_only": "robustness.data_anonymization.1x.adversarial_accuracy",
    "privacy_ssim_max_paper": "privacy.ssim_max_paper",
    "privacy_ssim_max_full": "privacy.ssim_max_full",
}


def _flatten(node: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key not in _TIMING:
                _flatten(value, f"{prefix}.{key}" if prefix else str(key), out)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            _flatten(value, f"{prefix}.{index}", out)
    elif node is None or isinstance(node, (int, float)) and not isinstance(node, bool):
        out[prefix] = node


def _statistic(value: float | None, n_seeds: int = 1) -> dict[str, Any] | None:
    return None if value is None else {"mean": value, "ci90": [value, value], "n_seeds": n_seeds}


def _set_at(tree: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for key in parents:
        tree = tree.setdefault(key, {})
    tree[leaf] = value


def _quickstart_v1(results: Mapping[str, Any]) -> dict[str, Any]:
    extractor = results["metadata"]["extractor"]
    sets = {}
    for model, metrics in results["models"].items():
        per_seed: dict[str, Any] = {}
        for metric, entry in metrics.items():
            name = metric[: -len(extractor) - 1] if metric.endswith("_" + extractor) else None
            if name in ("precision", "recall", "density", "coverage", "fid"):
                _set_at(per_seed, f"fidelity.{extractor}.{name}", entry["value"])
            elif metric in _QUICKSTART_V1:
                _set_at(per_seed, _QUICKSTART_V1[metric], entry["value"])
        aggregated: dict[str, Any] = {}
        flat: dict[str, Any] = {}
        _flatten(per_seed, "", flat)
        for path, value in flat.items():
            _set_at(aggregated, path, _statistic(value))
            if ".baseline_real.0x." in path:  # a baseline is repeated under every synthetic multiplier
                _set_at(aggregated, path.replace(".0x.", ".1x."), _statistic(value))
        sets[model] = {**aggregated, "per_seed": [per_seed]}
    return sets


def _dp_sweep_v1(results: Mapping[str, Any]) -> dict[str, Any]:
    extractor = results["metadata"]["extractor"]
    seeds = results["metadata"]["seeds"]
    sets = {}
    for entry in results["by_sigma"]:
        name = f"sigma_{entry['sigma']:g}"
        aggregated: dict[str, Any] = {}
        _set_at(aggregated, f"fidelity.{extractor}.fid", entry["fid"])
        _set_at(aggregated, "utility.data_anonymization.1x.accuracy", entry["utility"])
        epsilon = None if entry["epsilon"] is None else dict(entry["epsilon"])
        if epsilon is not None:  # schema 2 keeps delta with the set's DP settings
            _set_at(aggregated, "dp.delta", epsilon.pop("delta"))
        _set_at(aggregated, "privacy.dp_epsilon", epsilon)
        if "empirical_epsilon" in entry:
            _set_at(aggregated, "privacy.empirical_epsilon", entry["empirical_epsilon"])
        runs = sorted((r for r in results["runs"] if r["sigma"] == entry["sigma"]), key=lambda r: seeds.index(r["seed"]))
        per_seed = []
        for run in runs:
            tree: dict[str, Any] = {"seed": run["seed"]}
            _set_at(tree, f"fidelity.{extractor}.fid", run["fid"])
            _set_at(tree, "utility.data_anonymization.1x.accuracy", run["utility"])
            _set_at(tree, "privacy.dp_epsilon", run["epsilon"])
            for key in ("empirical_epsilon",):
                if key in run:
                    _set_at(tree, f"privacy.{key}", run[key])
            if "query_index" in run:
                tree["query_index"] = run["query_index"]
            per_seed.append(tree)
        sets[name] = {**aggregated, "per_seed": per_seed}
    return sets


def canonical_numbers(results: Mapping[str, Any]) -> dict[str, Any]:
    """``<set>/<dotted path>`` -> number (or None) for every non-timing number of the synthetic sets."""
    if "models" in results:
        sets = _quickstart_v1(results)
    elif "by_sigma" in results:
        sets = _dp_sweep_v1(results)
    else:
        sets = results["synthetic_sets"]
    numbers: dict[str, Any] = {}
    for name, entry in sets.items():
        flat: dict[str, Any] = {}
        _flatten({k: v for k, v in entry.items() if k not in ("kind", "not_computed", "model")}, "", flat)
        numbers.update({f"{name}/{path}": value for path, value in flat.items()})
    return numbers


def compare(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """(differences: numbers of ``old`` missing or changed in ``new``, additions: keys only ``new`` has)."""
    a, b = canonical_numbers(old), canonical_numbers(new)
    differences = [f"{key}: {a[key]!r} -> {b.get(key, '<missing>')!r}" for key in a
                   if key not in b or repr(a[key]) != repr(b[key])]
    additions = sorted(set(b) - set(a))
    return differences, additions


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__)
        return 2
    old, new = (json.loads(Path(path).read_text()) for path in argv)
    differences, additions = compare(old, new)
    compared = len(canonical_numbers(old))
    for line in differences:
        print("DIFFERENT", line)
    print(f"{compared} numbers compared, {len(differences)} different, {len(additions)} only in the new file")
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
