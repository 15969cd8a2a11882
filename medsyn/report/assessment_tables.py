"""Tables of the report (laid out like paper 000 Tables 2-4), from a results document (schema 2,
``medsyn.report.results``). Each function returns Markdown lines, or no line when no synthetic set has
what the table shows; a column no set has is left out and a cell a set lacks is "-".

Every cell is "mean [low, high]" with the 90% CI over seeds; every column names its extractor or protocol.

- Table A (000 Table 2): per synthetic set, fidelity (precision), diversity (recall), density, coverage, FID and
  KID for each feature extractor; then Inception Score, sampling speed, and PSNR/SSIM/LPIPS on true pairs
  (reconstructions) and on paper 001's unpaired set (001 Table 1).
- Table B (000 Table 2, privacy column, + 001 §3.2): SSIM-max (paper protocol and full scan), DCR KS/area in
  each space, empirical epsilon, DP epsilon.
- Table C (000 Tables 3-4): rows Experiments x Models (baselines once, with "-"), columns utility (accuracy,
  macro F1) and robustness (adversarial accuracy) at each multiplier.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from medsyn.report.metric_catalog import BASELINE_REGIMES, REGIME_LABELS, SYNTHETIC_REGIMES
from medsyn.report.results import baseline_entry, multiplier_keys

__all__ = [
    "fidelity_tables",
    "format_interval",
    "markdown_table",
    "not_computed_lines",
    "privacy_table",
    "utility_table",
]

_FIDELITY_COLUMNS = (("precision", "Fidelity (precision) ↑"), ("recall", "Diversity (recall) ↑"),
                     ("density", "Density ↑"), ("coverage", "Coverage ↑"), ("fid", "FID ↓"), ("kid", "KID ↓"))
_PAIR_GROUPS = {"true_pairs": "true pairs", "unpaired_set": "unpaired set"}
_PAIR_COLUMNS = (("psnr", "PSNR {group} (dB) ↑"), ("ssim", "SSIM {group} ↑"), ("lpips", "LPIPS {group} ↓"))
_NOT_AN_EXTRACTOR = (*_PAIR_GROUPS, "inception_score")
_PAIRS_NOTE = (
    "PSNR / SSIM / LPIPS (VGG16, lpips v0.1) of image pairs. **True pairs**: each real test image and the "
    "generator's reconstruction of it (a reconstruction error: how faithfully the model reproduces a given "
    "image). **Unpaired set** (paper 001 Table 1): the real test split and as many synthetic images of each "
    "class, paired class by class with no correspondence (a similarity of two sets, not an error: smooth, "
    "average-looking samples score a higher PSNR than sharp, varied ones)."
)
NO_PRIVACY = "inf (no privacy)"


def format_interval(entry: Mapping[str, Any] | None) -> str:
    """{"mean", "ci90": [low, high], "n_seeds"} -> "0.812 [0.771, 0.856]"; missing -> "-"."""
    if not entry:
        return "-"
    low, high = entry["ci90"]
    return f"{entry['mean']:.4g} [{low:.4g}, {high:.4g}]"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A pipe table and the blank line after it."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines + [""]


def _first_seen(groups: Sequence[Mapping[str, Any]], skip: Sequence[str] = ()) -> list[str]:
    keys: list[str] = []
    for group in groups:
        keys += [key for key in group if key not in keys and key not in skip]
    return keys


def _extractor_note(name: str, metadata: Mapping[str, Any]) -> str:
    info = metadata.get("extractors", {}).get(name, {})
    if "description" in info:
        return info["description"]
    if name == "effnet_lite0":
        return "offline ImageNet EfficientNet-Lite0; not comparable to published Inception FID"
    if name in ("inception_v3", "vgg16"):
        return "torch-fidelity-compatible architecture from the configured weights file"
    return "registered feature extractor"


def fidelity_tables(results: Mapping[str, Any]) -> list[str]:
    """Table A: one table per feature extractor, then Inception Score, sampling speed and true-pair tables."""
    sets = results["synthetic_sets"]
    metadata = results.get("metadata", {})
    protocol = metadata.get("protocol", {})
    fidelity = {name: entry.get("fidelity", {}) for name, entry in sets.items()}
    extractors = _first_seen(list(fidelity.values()), skip=_NOT_AN_EXTRACTOR)
    is_classifiers = _first_seen([f.get("inception_score", {}) for f in fidelity.values()])
    speed_rows = [[name, format_interval(entry["sampling_speed"])] for name, entry in sets.items()
                  if "sampling_speed" in entry]
    pair_columns = [(group, key, label.format(group=words)) for group, words in _PAIR_GROUPS.items()
                    for key, label in _PAIR_COLUMNS if any(key in f.get(group, {}) for f in fidelity.values())]
    pair_rows = [[name] + [format_interval(f.get(group, {}).get(key)) for group, key, _label in pair_columns]
                 for name, f in fidelity.items() if any(group in f for group in _PAIR_GROUPS)]
    if not (extractors or is_classifiers or speed_rows or pair_rows):
        return []
    lines = ["## Table A: fidelity and diversity (paper 000 Table 2)", ""]
    for extractor in extractors:
        columns = [(key, label) for key, label in _FIDELITY_COLUMNS
                   if any(key in f.get(extractor, {}) for f in fidelity.values())]
        note = _extractor_note(extractor, metadata)
        lines += [f"Extractor **{extractor}** ({note}); protocol: {protocol.get('fidelity', 'k=3')}.", ""]
        header = ["Synthetic set"] + [f"{label} [{extractor}]" for _key, label in columns]
        rows = [[name] + [format_interval(f.get(extractor, {}).get(key)) for key, _label in columns]
                for name, f in fidelity.items() if extractor in f]
        lines += markdown_table(header, rows)
    if is_classifiers:
        lines += ["Inception Score computed with the classifier named in each column (not ImageNet Inception: "
                  "comparable only within that classifier; higher = confident and varied predictions):", ""]
        rows = [[name] + [format_interval(f["inception_score"].get(c)) for c in is_classifiers]
                for name, f in fidelity.items() if "inception_score" in f]
        lines += markdown_table(["Synthetic set"] + [f"IS [{c}] ↑" for c in is_classifiers], rows)
    if speed_rows:
        lines += ["Sampling speed (paper 000 §4.1.3: samples per second after an untimed warm-up, on this "
                  "machine; sets of external images have none):", ""]
        lines += markdown_table(["Synthetic set", "Sampling speed (samples/s) ↑"], speed_rows)
    if pair_rows:
        lines += [_PAIRS_NOTE, ""]
        lines += markdown_table(["Synthetic set"] + [label for _group, _key, label in pair_columns], pair_rows)
    return lines


def _dp_epsilon_cell(privacy: Mapping[str, Any]) -> str:
    if "dp_epsilon" not in privacy:
        return "-"
    return NO_PRIVACY if privacy["dp_epsilon"] is None else format_interval(privacy["dp_epsilon"])


# paper 001 §3.2, signed; worst = max over the queries (the headline), mean beside it
EMPIRICAL_EPSILON_COLUMNS = (
    ("empirical_epsilon_worst_paper_code", "empirical ε worst query, ln(r_a/r_v) as paper code ↓"),
    ("empirical_epsilon_mean_paper_code", "empirical ε mean over queries, paper code ↓"),
    ("empirical_epsilon_worst_with_d", "empirical ε worst query, with d (kNN log density ratio) ↓"),
    ("empirical_epsilon_mean_with_d", "empirical ε mean over queries, with d ↓"),
)


def privacy_table(results: Mapping[str, Any]) -> list[str]:
    """Table B: SSIM-max, DCR KS/area per space, empirical epsilon and DP epsilon of every set with privacy."""
    sets = {name: entry["privacy"] for name, entry in results["synthetic_sets"].items() if "privacy" in entry}
    if not sets:
        return []
    protocol = results.get("metadata", {}).get("protocol", {})
    spaces = _first_seen([p.get("dcr_ks", {}) for p in sets.values()] + [p.get("dcr_area", {}) for p in sets.values()])
    columns: list[tuple[str, Any]] = []  # (header, privacy section -> cell)
    for key, label in (("ssim_max_paper", "SSIM-max (q, l as paper 000) ↓"),
                       ("ssim_max_full", "SSIM-max (every synthetic image) ↓")):
        if any(key in p for p in sets.values()):
            columns.append((label, lambda p, key=key: format_interval(p.get(key))))
    for key, label in (("dcr_ks", "DCR KS"), ("dcr_area", "DCR area")):
        columns += [(f"{label} ({space} space)", lambda p, key=key, space=space: format_interval(p.get(key, {}).get(space)))
                    for space in spaces if any(space in p.get(key, {}) for p in sets.values())]
    for key, label in EMPIRICAL_EPSILON_COLUMNS:
        if any(key in p for p in sets.values()):
            columns.append((label, lambda p, key=key: format_interval(p.get(key))))
    if any("dp_epsilon" in p for p in sets.values()):
        columns.append(("DP ε (DP-SGD accountant) ↓", _dp_epsilon_cell))
    lines = ["## Table B: privacy (paper 000 §4.1.6, paper 001 §3.2)", ""]
    lines += markdown_table(["Synthetic set"] + [header for header, _cell in columns],
                            [[name] + [cell(p) for _header, cell in columns] for name, p in sets.items()])
    if spaces:
        lines += ["DCR: distances to the closest generator training member, of synthetic images vs of held-out real "
                  "images; KS and area between the two ECDFs (0 = synthetic images are no closer to the training "
                  "members than unseen real images are). " + protocol.get("privacy", ""), ""]
    elif "privacy" in protocol:
        lines += [protocol["privacy"], ""]
    return lines


def utility_table(results: Mapping[str, Any]) -> list[str]:
    """Table C: baselines once (Models "-"), then each synthetic regime x set, at every multiplier present."""
    sets = results["synthetic_sets"]
    if not any("utility" in entry or "robustness" in entry for entry in sets.values()):
        return []
    protocol = results.get("metadata", {}).get("protocol", {})
    multipliers = sorted(set(multiplier_keys(results, "utility")) | set(multiplier_keys(results, "robustness")),
                         key=lambda key: int(key.rstrip("x")))
    robust = any("robustness" in entry for entry in sets.values())
    intro = protocol.get("utility", "")
    if robust and "robustness" in protocol:
        intro += ". Robustness: " + protocol["robustness"]
    lines = ["## Table C: utility and robustness (paper 000 Tables 3-4)", ""] + ([intro, ""] if intro else [])

    top_accuracy = _top_k_key(results, "utility", "accuracy")  # e.g. "top3_accuracy" (classifier.top_k 3)
    top_robust = _top_k_key(results, "robustness", "adversarial_accuracy") if robust else None

    def cells(utility: Mapping[str, Any] | None, robustness: Mapping[str, Any] | None) -> list[str]:
        row = [format_interval((utility or {}).get("accuracy")), format_interval((utility or {}).get("macro_f1"))]
        row += [format_interval((utility or {}).get(top_accuracy))] if top_accuracy else []
        row += [format_interval((robustness or {}).get("adversarial_accuracy"))] if robust else []
        return row + ([format_interval((robustness or {}).get(top_robust))] if top_robust else [])

    def group(key: str) -> list[str]:
        suffix = f" {key}" if key else ""
        names = [f"Utility acc.{suffix}", f"Macro F1{suffix}"]
        names += [f"Utility {_top_k_label(top_accuracy)} acc.{suffix}"] if top_accuracy else []
        names += [f"Robustness{suffix}"] if robust else []
        return names + ([f"Robustness {_top_k_label(top_robust)}{suffix}"] if top_robust else [])

    header = ["Experiments", "Models"]
    for key in multipliers:
        header += group(key)
    rows = []
    for regime in BASELINE_REGIMES:
        utility, robustness = baseline_entry(results, "utility", regime), baseline_entry(results, "robustness", regime)
        if utility is not None or robustness is not None:
            rows.append([REGIME_LABELS[regime], "-"] + cells(utility, robustness) * max(len(multipliers), 1))
    for regime in SYNTHETIC_REGIMES:
        for name, entry in sets.items():
            utility, robustness = entry.get("utility", {}).get(regime), entry.get("robustness", {}).get(regime)
            if utility is None and robustness is None:
                continue
            row = [REGIME_LABELS[regime], name]
            for key in multipliers:
                row += cells((utility or {}).get(key), (robustness or {}).get(key))
            rows.append(row)
    if not multipliers:  # baselines only: one column group, no synthetic image
        header += group("")
    lines += markdown_table(header, rows)
    lines += [("Baselines use no synthetic image (keyed `0x` in results.json); their values repeat in every "
               "multiplier column for comparison."), ""]
    return lines


def _top_k_key(results: Mapping[str, Any], section: str, metric: str) -> str | None:
    """The top-k name of ``metric`` in ``section`` of any set ("top3_accuracy"; classifier.top_k > 1), or None."""
    pattern = re.compile(rf"top\d+_{metric}")
    for entry in results["synthetic_sets"].values():
        for by_multiplier in entry.get(section, {}).values():
            for scores in by_multiplier.values():
                found = sorted(key for key in scores if pattern.fullmatch(key))
                if found:
                    return found[0]
    return None


def _top_k_label(key: str | None) -> str:
    """"top3_accuracy" -> "top-3"."""
    return "top-" + (key or "").split("_", 1)[0][3:]


def not_computed_lines(results: Mapping[str, Any]) -> list[str]:
    """"Not computed": one bullet per (set, metric) with the reason recorded in results.json."""
    skipped = [(name, metric, why) for name, entry in results["synthetic_sets"].items()
               for metric, why in entry.get("not_computed", {}).items()]
    if not skipped:
        return []
    return ["## Not computed", ""] + [f"- {name}: `{metric}` — {why}" for name, metric, why in skipped] + [""]
