"""The DP sweep's ``dp_sweep.md`` (paper 001 Fig. 2 and Table 1 as tables) and the series its figure draws,
from a results document of workflow ``dp_sweep`` (schema 2, ``medsyn.report.results``): one synthetic set per
DP-SGD noise multiplier sigma, in order of ``dp.sigma``.

Every per-sigma metric of ``SWEEP_METRICS`` (mean [90% CI] over seeds): FID against the holdout at matched
sizes on the sweep's extractor, IS (Baseline Real classifier), the unpaired-set LPIPS / PSNR / SSIM, the DP
epsilon ("inf (no privacy)" when null: sigma 0 or no finite bound over the seeds), the empirical epsilon of
paper 001 §3.2 (worst query, signed, paper-code convention ln(r_a/r_v) and with the dimension factor d), DCR
in pixel space (KS statistic, area between the ECDFs and that area normalised to [0, 1] as 001 Fig. 11) and
utility = accuracy of a classifier trained on the synthetic set only
(``utility.data_anonymization.<m>x.accuracy``, the sweep's one multiplier). A metric no set has is "-" with
the reason the sets record under ``not_computed``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from medsyn.report.cost_table import cost_table_lines
from medsyn.report.results import validate_results

__all__ = ["EMPIRICAL_SERIES", "NO_PRIVACY", "SWEEP_METRICS", "dp_sweep_extractor", "dp_sweep_series",
           "render_dp_sweep_markdown"]

# (series key, privacy metric, column header): the empirical epsilon of the worst query in both conventions
EMPIRICAL_SERIES = (
    ("empirical_epsilon_paper_code", "empirical_epsilon_worst_paper_code", "empirical ε worst, paper code"),
    ("empirical_epsilon_with_d", "empirical_epsilon_worst_with_d", "empirical ε worst, with d"),
)

# (series key, path in a set ("{extractor}": the FID extractor, "{multiplier}": the utility multiplier), header,
# digits, table): every per-sigma metric in column order; table "fidelity" (001 Fig. 2, Table 1) or
# "privacy and utility"
SWEEP_METRICS: tuple[tuple[str, tuple[str, ...], str, int, str], ...] = (
    ("fid", ("fidelity", "{extractor}", "fid_holdout"), "FID vs holdout ({extractor})", 2, "fidelity"),
    ("inception_score", ("fidelity", "inception_score", "domain_baseline_real"), "IS (Baseline Real)", 3,
     "fidelity"),
    ("lpips", ("fidelity", "unpaired_set", "lpips"), "LPIPS", 3, "fidelity"),
    ("psnr", ("fidelity", "unpaired_set", "psnr"), "PSNR (dB)", 2, "fidelity"),
    ("ssim", ("fidelity", "unpaired_set", "ssim"), "SSIM", 3, "fidelity"),
    ("dp_epsilon", ("privacy", "dp_epsilon"), "epsilon (delta = 1/n_train)", 3, "privacy and utility"),
    *((key, ("privacy", metric), header, 3, "privacy and utility") for key, metric, header in EMPIRICAL_SERIES),
    ("dcr_ks", ("privacy", "dcr_ks", "pixel"), "DCR KS", 3, "privacy and utility"),
    ("dcr_area", ("privacy", "dcr_area", "pixel"), "DCR area", 4, "privacy and utility"),
    ("dcr_area_normalised", ("privacy", "dcr_area_normalised", "pixel"), "DCR area, normalised", 3,
     "privacy and utility"),
    ("utility", ("utility", "data_anonymization", "{multiplier}", "accuracy"), "utility (accuracy)", 3,
     "privacy and utility"),
)
# where a set records why a metric was not computed (not_computed key)
_NOT_COMPUTED_KEY = {"lpips": "lpips", "empirical_epsilon_paper_code": "empirical_epsilon",
                     "empirical_epsilon_with_d": "empirical_epsilon"}

NO_PRIVACY = "inf (no privacy)"
_MISSING = object()


def _get(entry: Mapping[str, Any], *path: str) -> Any:
    node: Any = entry
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return _MISSING
        node = node[key]
    return node


def dp_sweep_extractor(results: Mapping[str, Any]) -> str:
    """The sweep's FID extractor: ``metadata.extractor``, else the one extractor with an FID in the sets."""
    recorded = results.get("metadata", {}).get("extractor")
    if recorded:
        return recorded
    found = sorted({name for entry in results["synthetic_sets"].values()
                    for name, metrics in entry.get("fidelity", {}).items() if isinstance(metrics, Mapping)
                    and "fid_holdout" in metrics})
    if len(found) != 1:
        raise ValueError(f"results has FID on extractors {found}; pass extractor= to choose one")
    return found[0]


def _utility_multiplier(entry: Mapping[str, Any]) -> str:
    """The one synthetic multiplier key of ``utility.data_anonymization`` (e.g. ``"10x"``); "1x" if none."""
    keys = [key for key in entry.get("utility", {}).get("data_anonymization", {}) if key != "0x"]
    return keys[0] if len(keys) == 1 else "1x"


def dp_sweep_series(results: Mapping[str, Any], *, extractor: str) -> list[dict[str, Any]]:
    """One row per synthetic set, ascending ``dp.sigma``: {"name", "sigma", one key per ``SWEEP_METRICS``
    (a statistic, or None where the set has none), "not_computed" (the set's reasons), "no_privacy"};
    ``no_privacy``: the set records ``dp_epsilon`` null (no finite DP guarantee, e.g. sigma 0). ValueError
    for a document that is not a valid DP sweep or has no FID on ``extractor``."""
    validate_results(results)
    if results["workflow"] != "dp_sweep":
        raise ValueError(f"results is of workflow {results['workflow']!r}; the DP sweep report needs 'dp_sweep'")
    sets = results["synthetic_sets"]
    if all(_get(entry, "fidelity", extractor, "fid_holdout") is _MISSING for entry in sets.values()):
        present = sorted({name for entry in sets.values() for name in entry.get("fidelity", {})})
        raise ValueError(f"no synthetic set has fidelity.{extractor}.fid_holdout (extractors present: {present})")
    rows = []
    for name, entry in sorted(sets.items(), key=lambda item: item[1]["dp"]["sigma"]):
        fill = {"extractor": extractor, "multiplier": _utility_multiplier(entry)}
        metrics = {key: _get(entry, *(part.format(**fill) for part in path))
                   for key, path, _header, _digits, _table in SWEEP_METRICS}
        rows.append({"name": name, "sigma": float(entry["dp"]["sigma"]),
                     **{key: None if value is _MISSING else value for key, value in metrics.items()},
                     "not_computed": dict(entry.get("not_computed", {})),
                     "no_privacy": metrics["dp_epsilon"] is None})
    return rows


def _cell(entry: Mapping[str, Any] | None, digits: int) -> str:
    if entry is None:
        return "-"
    low, high = entry["ci90"]
    return f"{entry['mean']:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def _table_lines(rows: list[dict[str, Any]], table: str, extractor: str) -> list[str]:
    columns = [(key, header.format(extractor=extractor), digits) for key, _path, header, digits, in_table
               in SWEEP_METRICS if in_table == table]
    lines = ["| sigma |" + "".join(f" {header} |" for _key, header, _digits in columns) + " seeds |",
             "|---" * (len(columns) + 2) + "|"]
    for row in rows:
        cells = [NO_PRIVACY if key == "dp_epsilon" and row["no_privacy"] else _cell(row[key], digits)
                 for key, _header, digits in columns]
        seeds = next((row[key]["n_seeds"] for key, _header, _digits in columns if row[key] is not None), "-")
        lines.append(f"| {row['sigma']:g} |" + "".join(f" {cell} |" for cell in cells) + f" {seeds} |")
    return lines


def _not_computed_lines(rows: list[dict[str, Any]]) -> list[str]:
    """'- LPIPS: why' for every metric that no set has, with the reason the sets record."""
    lines = []
    for key, _path, header, _digits, _table in SWEEP_METRICS:
        if key == "dp_epsilon" or any(row[key] is not None for row in rows):
            continue
        reasons = sorted({row["not_computed"].get(_NOT_COMPUTED_KEY.get(key, key), "") for row in rows} - {""})
        lines.append(f"- {header.format(extractor='')}: not computed" + (f" ({'; '.join(reasons)})" if reasons else ""))
    return lines


def render_dp_sweep_markdown(results: Mapping[str, Any], *, figure_name: str = "dp_sweep.png",
                             extractor: str | None = None) -> str:
    """The sweep's ``dp_sweep.md``: settings, two tables with one row per sigma (mean [90% CI]): fidelity and
    privacy / utility, what was not computed and why, the figure, notes.

    extractor: the FID extractor (default: :func:`dp_sweep_extractor`).
    """
    extractor = extractor or dp_sweep_extractor(results)
    rows = dp_sweep_series(results, extractor=extractor)
    meta = results["metadata"]
    data = meta.get("data", {})
    first = next(iter(results["synthetic_sets"].values()))
    model = meta.get("model", first.get("model", "?"))
    train_size = data.get("split_sizes", {}).get("train", "?")
    lines = [
        f"# DP sweep: {model} (paper 001 Fig. 2, Table 1)",
        "",
        (
            f"Data `{data.get('kind', '?')}` ({data.get('source', '?')}), {meta.get('per_class', '?')} training "
            f"images per class ({train_size} in all), seeds {meta.get('seeds', '?')}, {meta.get('steps', '?')} "
            f"steps of batch {meta.get('batch_size', '?')}, clipping bound C = {first['dp']['max_grad_norm']}."
        ),
        "",
        "## Fidelity",
        "",
        *_table_lines(rows, "fidelity", extractor),
        "",
        "## Privacy and utility",
        "",
        *_table_lines(rows, "privacy and utility", extractor),
        "",
        "Values are the mean over seeds with the 90% confidence interval in brackets.",
        "",
    ]
    missing = _not_computed_lines(rows)
    if missing:
        lines += ["Not computed:", *missing, ""]
    lines += [f"![every per-sigma metric against sigma]({figure_name})", ""]
    notes = meta.get("notes", [])
    if notes:
        lines += ["Notes:", *[f"- {note}" for note in notes], ""]
    lines += cost_table_lines(meta)
    return "\n".join(lines)
