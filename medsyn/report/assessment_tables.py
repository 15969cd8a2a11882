"""Tables of the assessment report (laid out like paper 000 Tables 2-4) and the flat CSV of every metric.

Every cell is "mean [low, high]" with the 90% CI over seeds; every column names its extractor or protocol.

- Table A (000 Table 2): per synthetic set, fidelity (precision), diversity (recall), density, coverage, FID and
  KID for each feature extractor.
- Table B (000 Table 2, privacy column, + 001 §3.2): SSIM-max (paper protocol and full scan), DCR KS/area in
  pixel and feature space, empirical epsilon.
- Table C (000 Tables 3-4): rows Experiments x Models (baselines once, with "-"), columns utility (accuracy,
  macro F1) and robustness (adversarial accuracy) at each multiplier.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import Any

__all__ = ["flatten_for_csv", "format_interval", "render_assessment_markdown"]

_REGIME_LABELS = {
    "baseline_real": "Baseline Real",
    "geometric_da": "Geometric DA",
    "data_anonymization": "Data Anonymization",
    "synthetic_da": "Synthetic DA",
    "combined_da": "Combined DA",
}
_BASELINES = ("baseline_real", "geometric_da")
_FIDELITY_COLUMNS = (("precision", "Fidelity (precision) ↑"), ("recall", "Diversity (recall) ↑"),
                     ("density", "Density ↑"), ("coverage", "Coverage ↑"), ("fid", "FID ↓"), ("kid", "KID ↓"))


def _is_statistic(value: Any) -> bool:
    return isinstance(value, Mapping) and {"mean", "ci90", "n_seeds"} <= set(value)


def format_interval(entry: Mapping[str, Any] | None) -> str:
    """{"mean", "ci90": [low, high], "n_seeds"} -> "0.812 [0.771, 0.856]"; missing -> "-"."""
    if not entry:
        return "-"
    low, high = entry["ci90"]
    return f"{entry['mean']:.4g} [{low:.4g}, {high:.4g}]"


def flatten_for_csv(results: Mapping[str, Any]) -> str:
    """CSV with one row per metric: synthetic_set, path (dotted keys), mean, ci90_low, ci90_high, n_seeds."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["synthetic_set", "metric", "mean", "ci90_low", "ci90_high", "n_seeds"])

    def walk(set_name: str, node: Mapping[str, Any], path: str) -> None:
        for key, value in node.items():
            child = f"{path}.{key}" if path else str(key)
            if _is_statistic(value):
                writer.writerow([set_name, child, repr(value["mean"]), repr(value["ci90"][0]),
                                 repr(value["ci90"][1]), value["n_seeds"]])
            elif isinstance(value, Mapping):
                walk(set_name, value, child)

    for set_name, set_results in results.get("synthetic_sets", {}).items():
        walk(set_name, {k: v for k, v in set_results.items() if k != "per_seed"}, "")
    return buffer.getvalue()


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines + [""]


def _extractor_note(name: str, metadata: Mapping[str, Any]) -> str:
    info = metadata.get("extractors", {}).get(name, {})
    if "description" in info:
        return info["description"]
    if name == "effnet_lite0":
        return "offline ImageNet EfficientNet-Lite0; not comparable to published Inception FID"
    if name in ("inception_v3", "vgg16"):
        return "torch-fidelity-compatible architecture from the configured weights file"
    return "registered feature extractor"


def _multiplier_keys(set_results: Mapping[str, Any]) -> list[str]:
    keys = {key for regime, entries in set_results["utility"].items() if regime not in _BASELINES for key in entries}
    return sorted(keys, key=lambda key: int(key.rstrip("x")))


def render_assessment_markdown(results: Mapping[str, Any], *, figures: Mapping[str, str]) -> str:
    """report.md text. ``figures``: caption -> path relative to the report."""
    sets = results.get("synthetic_sets") or {}
    if not sets:
        raise ValueError("results has no synthetic_sets to report")
    metadata = results.get("metadata", {})
    data = metadata.get("data", {})
    protocol = metadata.get("protocol", {})
    lines = ["# medsyn assessment report", ""]
    lines += [
        (
            f"Real data: {data.get('source', '?')}, images (C,H,W) {data.get('image_shape', '?')}, classes "
            f"{data.get('class_names', '?')}; split sizes {data.get('split_sizes', '?')}. Seeds: "
            f"{metadata.get('seeds', '?')}. Every cell is the mean over seeds with its 90% confidence interval "
            "(Student t) in brackets."
        ),
        "",
    ]
    for topic, text in protocol.items():
        lines.append(f"- **{topic}**: {text}")
    lines.append("")

    first = next(iter(sets.values()))
    extractors = [name for name in first["fidelity"] if name not in ("true_pairs", "inception_score")]
    lines += ["## Table A: fidelity and diversity (paper 000 Table 2)", ""]
    for extractor in extractors:
        note = _extractor_note(extractor, metadata)
        lines += [f"Extractor **{extractor}** ({note}); protocol: {protocol.get('fidelity', 'k=3')}.", ""]
        header = ["Synthetic set"] + [f"{label} [{extractor}]" for _key, label in _FIDELITY_COLUMNS]
        rows = [[name] + [format_interval(entry["fidelity"].get(extractor, {}).get(key)) for key, _ in _FIDELITY_COLUMNS]
                for name, entry in sets.items()]
        lines += _table(header, rows)
    pair_rows = [[name, format_interval(entry["fidelity"]["true_pairs"]["psnr"]),
                  format_interval(entry["fidelity"]["true_pairs"]["ssim"])]
                 for name, entry in sets.items() if "true_pairs" in entry["fidelity"]]
    is_rows = [[name] + [format_interval(value) for value in entry["fidelity"]["inception_score"].values()]
               for name, entry in sets.items() if "inception_score" in entry["fidelity"]]
    if is_rows:
        classifiers = list(first["fidelity"].get("inception_score", {}))
        lines += ["Inception Score computed with the classifier named in each column (not ImageNet Inception: "
                  "comparable only within that classifier; higher = confident and varied predictions):", ""]
        lines += _table(["Synthetic set"] + [f"IS [{c}] ↑" for c in classifiers], is_rows)
    speed_rows = [[name, format_interval(entry["sampling_speed"])] for name, entry in sets.items()
                  if "sampling_speed" in entry]
    if speed_rows:
        lines += ["Sampling speed (paper 000 §4.1.3: samples per second after an untimed warm-up, on this "
                  "machine; sets of external images have none):", ""]
        lines += _table(["Synthetic set", "Sampling speed (samples/s) ↑"], speed_rows)
    if pair_rows:
        lines += ["PSNR / SSIM on true pairs (real test image, its reconstruction):", ""]
        lines += _table(["Synthetic set", "PSNR (dB) ↑", "SSIM ↑"], pair_rows)

    lines += ["## Table B: privacy (paper 000 §4.1.6, paper 001 §3.2)", ""]
    spaces = list(first["privacy"].get("dcr_ks", {}))
    header = ["Synthetic set", "SSIM-max (q, l as paper 000) ↓", "SSIM-max (every synthetic image) ↓"]
    header += [f"DCR KS ({space} space)" for space in spaces] + [f"DCR area ({space} space)" for space in spaces]
    header.append("empirical ε (kNN density in Isomap of real train) ↓")
    rows = []
    for name, entry in sets.items():
        privacy = entry["privacy"]
        row = [name, format_interval(privacy.get("ssim_max_paper")), format_interval(privacy.get("ssim_max_full"))]
        row += [format_interval(privacy.get("dcr_ks", {}).get(space)) for space in spaces]
        row += [format_interval(privacy.get("dcr_area", {}).get(space)) for space in spaces]
        row.append(format_interval(privacy.get("empirical_epsilon")))
        rows.append(row)
    lines += _table(header, rows)
    lines += ["DCR: distances to the closest generator training member, of synthetic images vs of held-out real "
              "images; KS and area between the two ECDFs (0 = synthetic images are no closer to the training "
              "members than unseen real images are). " + protocol.get("privacy", ""), ""]

    multipliers = _multiplier_keys(first)
    lines += ["## Table C: utility and robustness (paper 000 Tables 3-4)", "",
              protocol.get("utility", "") + ". Robustness: " + protocol.get("robustness", ""), ""]
    header = ["Experiments", "Models"]
    for key in multipliers:
        header += [f"Utility acc. {key}", f"Macro F1 {key}", f"Robustness {key}"]
    rows = []
    for regime in _BASELINES:
        if regime not in first["utility"]:
            continue
        utility = next(iter(first["utility"][regime].values()))
        robust = next(iter(first["robustness"][regime].values()))
        row = [_REGIME_LABELS[regime], "-"]
        for _key in multipliers:
            row += [format_interval(utility["accuracy"]), format_interval(utility["macro_f1"]),
                    format_interval(robust["adversarial_accuracy"])]
        rows.append(row)
    for regime in ("data_anonymization", "synthetic_da", "combined_da"):
        for name, entry in sets.items():
            if regime not in entry["utility"]:
                continue
            row = [_REGIME_LABELS[regime], name]
            for key in multipliers:
                utility = entry["utility"][regime].get(key, {})
                robust = entry["robustness"][regime].get(key, {})
                row += [format_interval(utility.get("accuracy")), format_interval(utility.get("macro_f1")),
                        format_interval(robust.get("adversarial_accuracy"))]
            rows.append(row)
    lines += _table(header, rows)
    lines += [("Baselines use no synthetic image (keyed `0x` in results.json); their values repeat in every "
               "multiplier column for comparison."), ""]

    skipped = [(name, metric, why) for name, entry in sets.items() for metric, why in entry.get("not_computed", {}).items()]
    if skipped:
        lines += ["## Not computed", ""]
        lines += [f"- {name}: `{metric}` — {why}" for name, metric, why in skipped]
        lines.append("")

    lines += ["## Figures", ""]
    for caption, path in figures.items():
        lines += [f"### {caption}", "", f"![{caption}]({path})", ""]
    versions = metadata.get("versions", {})
    if versions:
        lines += ["## Versions", "", ", ".join(f"{k} {v}" for k, v in versions.items()), ""]
    return "\n".join(lines)
