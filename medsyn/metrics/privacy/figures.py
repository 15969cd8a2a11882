"""Privacy figures drawn from the result dicts of this package (issue 5, item 6): the two DCR ECDFs
(paper 001 Fig. 11's inputs) and the Isomap scatter of victim/ablated synthetic sets with the query
(paper 001 Fig. 8). PNGs are rendered with the Agg backend and written atomically."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["save_dcr_ecdf_plot", "save_isomap_scatter"]


def _figure(width: float, height: float):
    from matplotlib.figure import Figure  # the object API needs no pyplot state and no display

    return Figure(figsize=(width, height), dpi=100)


def _write_png(path: str | os.PathLike, figure) -> Path:
    from medsyn.io.atomic import write_bytes_atomic

    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png")
    return write_bytes_atomic(path, buffer.getvalue())


def save_dcr_ecdf_plot(path: str | os.PathLike, dcr_result: dict[str, Any], *, title: str | None = None) -> Path:
    """ECDFs of synthetic and holdout distances to the training members, annotated with KS and area.

    dcr_result: the dict returned by :func:`distance_to_closest_record`
    """
    if not isinstance(dcr_result, dict) or "ecdf" not in dcr_result or "dcr_ks" not in dcr_result:
        raise ValueError("dcr_result must be the dict returned by distance_to_closest_record")
    figure = _figure(5.0, 3.6)
    axis = figure.subplots()
    for key, colour in (("synthetic", "tab:red"), ("holdout", "tab:blue")):
        points = dcr_result["ecdf"][key]
        x = np.concatenate([[points["x"][0]], points["x"]])
        y = np.concatenate([[0.0], points["y"]])
        axis.step(x, y, where="post", color=colour, label=f"{key} -> training members")
    axis.set_xlabel(f"distance to closest training record ({dcr_result.get('space', 'pixel')} space)")
    axis.set_ylabel("ECDF")
    axis.set_ylim(0, 1.02)
    axis.legend(fontsize=8, loc="lower right")
    axis.set_title(
        (title + "\n" if title else "")
        + f"KS {dcr_result['dcr_ks']['value']:.3f}   area {dcr_result['dcr_area']['value']:.3g}",
        fontsize=9,
    )
    return _write_png(path, figure)


def save_isomap_scatter(
    path: str | os.PathLike, epsilon_result: dict[str, Any], *, title: str | None = None
) -> Path:
    """Isomap embedding (fitted on real training data) of the real set, the first trial's victim and ablated
    synthetic sets, and every query.

    epsilon_result: the dict returned by :func:`empirical_epsilon` / :func:`run_empirical_epsilon_experiment`
    """
    if not isinstance(epsilon_result, dict) or "embedding" not in epsilon_result:
        raise ValueError("epsilon_result must be the dict returned by empirical_epsilon")
    embedding = epsilon_result["embedding"]
    arrays = {key: np.asarray(embedding[key], dtype=np.float64) for key in ("real_train", "victim", "ablated", "queries")}
    if arrays["real_train"].ndim != 2 or arrays["real_train"].shape[1] < 2:
        raise ValueError("the Isomap scatter needs an embedding with at least 2 components")
    figure = _figure(5.0, 4.4)
    axis = figure.subplots()
    styles = (
        ("real_train", {"color": "0.6", "s": 10, "label": "real training"}),
        ("ablated", {"color": "tab:blue", "s": 6, "alpha": 0.5, "label": "ablated synthetic"}),
        ("victim", {"color": "tab:red", "s": 6, "alpha": 0.5, "label": "victim synthetic"}),
    )
    for key, style in styles:
        axis.scatter(arrays[key][:, 0], arrays[key][:, 1], **style)
    axis.scatter(arrays["queries"][:, 0], arrays["queries"][:, 1], marker="*", s=160, color="black", label="query")
    axis.set_xlabel("Isomap 1")
    axis.set_ylabel("Isomap 2")
    axis.legend(fontsize=8)
    summary = epsilon_result.get("empirical_epsilon", {})
    axis.set_title(
        (title + "\n" if title else "") + f"empirical epsilon mean {summary.get('value', float('nan')):.3g}"
        f"  max {summary.get('max', float('nan')):.3g}",
        fontsize=9,
    )
    return _write_png(path, figure)
