"""The DP sweep's ``dp_sweep.md`` (paper 001 Fig. 10 as a table) and the series its figure draws, from a
results document of workflow ``dp_sweep`` (schema 2, ``medsyn.report.results``): one synthetic set per
DP-SGD noise multiplier sigma, in order of ``dp.sigma``.

Columns: FID on the sweep's extractor, the DP epsilon ("inf (no privacy)" when null: sigma 0 or no finite
bound over the seeds), the empirical epsilon of paper 001 §3.2 when measured (worst query, signed, in the
paper-code convention ln(r_a/r_v) and with the dimension factor d), and utility = accuracy of a classifier
trained on the synthetic set only (``utility.data_anonymization.1x.accuracy``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from medsyn.report.cost_table import cost_table_lines
from medsyn.report.results import validate_results

__all__ = ["EMPIRICAL_SERIES", "NO_PRIVACY", "dp_sweep_extractor", "dp_sweep_series", "render_dp_sweep_markdown"]

# (series key, privacy metric, column header): the empirical epsilon of the worst query in both conventions
EMPIRICAL_SERIES = (
    ("empirical_epsilon_paper_code", "empirical_epsilon_worst_paper_code", "empirical ε worst, paper code"),
    ("empirical_epsilon_with_d", "empirical_epsilon_worst_with_d", "empirical ε worst, with d"),
)

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
                    and "fid" in metrics})
    if len(found) != 1:
        raise ValueError(f"results has FID on extractors {found}; pass extractor= to choose one")
    return found[0]


def dp_sweep_series(results: Mapping[str, Any], *, extractor: str) -> list[dict[str, Any]]:
    """One row per synthetic set, ascending ``dp.sigma``: {"name", "sigma", "fid", "dp_epsilon",
    "empirical_epsilon_paper_code", "empirical_epsilon_with_d" (worst query), "utility", "no_privacy"}; each
    metric a statistic, or None where the set has none;
    ``no_privacy``: the set records ``dp_epsilon`` null (no finite DP guarantee, e.g. sigma 0). ValueError
    for a document that is not a valid DP sweep or has no FID on ``extractor``."""
    validate_results(results)
    if results["workflow"] != "dp_sweep":
        raise ValueError(f"results is of workflow {results['workflow']!r}; the DP sweep report needs 'dp_sweep'")
    sets = results["synthetic_sets"]
    if all(_get(entry, "fidelity", extractor, "fid") is _MISSING for entry in sets.values()):
        present = sorted({name for entry in sets.values() for name in entry.get("fidelity", {})})
        raise ValueError(f"no synthetic set has fidelity.{extractor}.fid (extractors present: {present})")
    rows = []
    for name, entry in sorted(sets.items(), key=lambda item: item[1]["dp"]["sigma"]):
        metrics = {key: _get(entry, *path) for key, path in (
            ("fid", ("fidelity", extractor, "fid")), ("dp_epsilon", ("privacy", "dp_epsilon")),
            *((key, ("privacy", metric)) for key, metric, _header in EMPIRICAL_SERIES),
            ("utility", ("utility", "data_anonymization", "1x", "accuracy")))}
        rows.append({"name": name, "sigma": float(entry["dp"]["sigma"]),
                     **{key: None if value is _MISSING else value for key, value in metrics.items()},
                     "no_privacy": metrics["dp_epsilon"] is None})
    return rows


def _cell(entry: Mapping[str, Any] | None, digits: int) -> str:
    if entry is None:
        return "-"
    low, high = entry["ci90"]
    return f"{entry['mean']:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def render_dp_sweep_markdown(results: Mapping[str, Any], *, figure_name: str = "dp_sweep.png",
                             extractor: str | None = None) -> str:
    """The sweep's ``dp_sweep.md``: settings, one table row per sigma (mean [90% CI]), the figure, notes.

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
        f"# DP sweep: {model} (paper 001 Fig. 10)",
        "",
        (
            f"Data `{data.get('kind', '?')}` ({data.get('source', '?')}), {meta.get('per_class', '?')} training "
            f"images per class ({train_size} in all), seeds {meta.get('seeds', '?')}, {meta.get('steps', '?')} "
            f"steps of batch {meta.get('batch_size', '?')}, clipping bound C = {first['dp']['max_grad_norm']}."
        ),
        "",
    ]
    empirical = [(key, header) for key, _metric, header in EMPIRICAL_SERIES if any(row[key] is not None for row in rows)]
    header = f"| sigma | FID ({extractor}) | epsilon (delta = 1/n_train) |"
    header += "".join(f" {name} |" for _key, name in empirical)
    lines += [header + " utility (accuracy) | seeds |", "|---" * (5 + len(empirical)) + "|"]
    for row in rows:
        epsilon = NO_PRIVACY if row["no_privacy"] else _cell(row["dp_epsilon"], 3)
        seeds = next((row[key]["n_seeds"] for key in ("fid", "utility", "dp_epsilon") if row[key] is not None), "-")
        line = f"| {row['sigma']:g} | {_cell(row['fid'], 2)} | {epsilon} |"
        line += "".join(f" {_cell(row[key], 3)} |" for key, _name in empirical)
        lines.append(line + f" {_cell(row['utility'], 3)} | {seeds} |")
    lines += [
        "",
        "Values are the mean over seeds with the Student-t 90% confidence interval in brackets.",
        "",
        f"![FID, epsilon and utility against sigma]({figure_name})",
        "",
    ]
    notes = meta.get("notes", [])
    if notes:
        lines += ["Notes:", *[f"- {note}" for note in notes], ""]
    lines += cost_table_lines(meta)
    return "\n".join(lines)
