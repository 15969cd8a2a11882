"""The seed loop of an assessment: per seed, the shared baselines, then every synthetic set through the
protocol; the first seed's privacy figures; the aggregation of each set over seeds.

    sets, figures = run_seeds(real, sources, protocol, seeds, output=Path("runs/x"), progress=True)

Run folders: ``<output>/models/<set>/seed<k>/`` (checkpoint, synthetic.npz, ablated generators); figures
under ``<output>/figures/<set>/``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from medsyn.evaluation.protocol import Protocol, RealData, aggregate_set, evaluate_for_seed, train_baselines
from medsyn.evaluation.stage_costs import StageCosts
from medsyn.evaluation.synthetic_sources import SyntheticSource

__all__ = ["run_dir_of", "run_seeds"]


def run_dir_of(output: Path, source_name: str, seed: int) -> Path:
    """Where the files of one (synthetic set, seed) live."""
    return output / "models" / source_name / f"seed{seed}"


def run_seeds(real: RealData, sources: Sequence[SyntheticSource], protocol: Protocol, seeds: Sequence[int], *,
              output: Path, progress: bool, costs: StageCosts | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """Returns (synthetic set name -> aggregated entry of the results schema, figure title -> relative path);
    each stage's time and memory go to ``costs``."""
    costs = costs if costs is not None else StageCosts()
    per_seed: dict[str, list[dict[str, Any]]] = {source.name: [] for source in sources}
    notes: dict[str, dict[str, str]] = {source.name: {} for source in sources}
    figures: dict[str, str] = {}
    for position, seed in enumerate(tqdm(seeds, desc="assessment seeds", disable=not progress)):
        baseline = train_baselines(real, protocol, seed, costs)
        for source in sources:
            tree, set_notes, artefacts = evaluate_for_seed(real, source, protocol, seed, baseline,
                                                           run_dir=run_dir_of(output, source.name, seed),
                                                           progress=progress, costs=costs)
            notes[source.name].update(set_notes)
            per_seed[source.name].append(tree)
            if position == 0:
                with costs.stage("figures"):
                    figures.update(_first_seed_figures(output, source.name, seed, real, protocol, artefacts))
    sets = {
        source.name: aggregate_set(per_seed[source.name], kind=source.kind, notes=notes[source.name],
                                   extra={"model": source.spec["model"]} if "model" in source.spec else None)
        for source in sources
    }
    return sets, figures


def _first_seed_figures(output: Path, name: str, seed: int, real: RealData, protocol: Protocol,
                        artefacts: dict[str, Any]) -> dict[str, str]:
    from medsyn.metrics.privacy import privacy_gallery
    from medsyn.report.privacy_figures import save_dcr_ecdf_plot, save_isomap_scatter, save_privacy_gallery

    figures: dict[str, str] = {}
    set_dir = f"figures/{name}"
    for space, result in artefacts.get("dcr", {}).items():
        path = f"{set_dir}/dcr_ecdf_{space}.png"
        save_dcr_ecdf_plot(output / path, result, title=f"{name}: DCR ECDF ({space} space)")
        figures[f"{name}: DCR ECDFs ({space} space, seed {seed})"] = path
    if "ssim" in artefacts and protocol.gallery_top is not None:
        gallery = privacy_gallery(artefacts["synthetic"].images, real.train.images, artefacts["ssim"],
                                  top=protocol.gallery_top)
        path = f"{set_dir}/privacy_gallery.png"
        save_privacy_gallery(output / path, gallery,
                             title=f"{name}: highest max-SSIM synthetic images (top) and nearest training images")
        figures[f"{name}: privacy gallery (seed {seed})"] = path
    if "epsilon" in artefacts:
        path = f"{set_dir}/isomap_query.png"
        save_isomap_scatter(output / path, artefacts["epsilon"], title=f"{name}: Isomap of real, victim, ablated and query")
        figures[f"{name}: Isomap scatter with the query (seed {seed})"] = path
    return figures
