"""Privacy figures, drawn from the result dicts of ``medsyn.metrics.privacy``:

- ``save_dcr_ecdf_plot``: the ECDFs of synthetic and held-out distances to the training members (paper 001
  Fig. 11's inputs), annotated with KS and area;
- ``save_isomap_scatter``: the Isomap embedding of the real set, victim and ablated synthetic sets and the
  query (paper 001 Fig. 8);
- ``save_privacy_gallery``: the synthetic images with the highest max-SSIM, each above the training image it
  is most similar to (``privacy_gallery`` picks the pairs), so a reader can judge by eye whether the closest
  pairs are copies.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from medsyn.report.figure_output import write_png

__all__ = ["PAIRS_PER_ROW", "save_dcr_ecdf_plot", "save_isomap_scatter", "save_privacy_gallery"]

PAIRS_PER_ROW = 8


def _figure(width: float, height: float):
    from matplotlib.figure import Figure  # the object API needs no pyplot state and no display

    return Figure(figsize=(width, height), dpi=100)


def _write(path: str | os.PathLike, figure) -> Path:
    figure.tight_layout()
    return write_png(path, figure, bbox_inches=None)


def save_dcr_ecdf_plot(path: str | os.PathLike, dcr_result: dict[str, Any], *, title: str | None = None) -> Path:
    """ECDFs of synthetic and holdout distances to the training members, annotated with KS and area.

    dcr_result: the dict returned by :func:`medsyn.metrics.privacy.distance_to_closest_record`
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
    return _write(path, figure)


def save_isomap_scatter(
    path: str | os.PathLike, epsilon_result: dict[str, Any], *, title: str | None = None
) -> Path:
    """Isomap embedding (fitted on real training data) of the real images of its fit set, the first trial's
    victim and ablated synthetic sets, and every query; the title gives the worst-query epsilon in both
    conventions and the fit's size and seconds.

    epsilon_result: the dict returned by :func:`medsyn.metrics.privacy.empirical_epsilon` /
        :func:`medsyn.metrics.privacy.run_empirical_epsilon_experiment`
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
    isomap = summary.get("isomap", {})
    nan = float("nan")
    axis.set_title(
        (title + "\n" if title else "")
        + f"empirical epsilon worst query: {summary.get('worst_paper_code', nan):.3g} (paper code), "
        f"{summary.get('worst_with_d', nan):.3g} (with d)\nIsomap fit on {isomap.get('fit_points', '?')} points "
        f"({isomap.get('real_images', '?')} real images + noisy copies), {isomap.get('fit_seconds', nan):.3g} s",
        fontsize=8,
    )
    return _write(path, figure)


def _to_display(image: np.ndarray) -> tuple[np.ndarray, str | None]:
    # [C,H,W] -> what imshow takes: grey [H,W] with a grey colour map, or RGB [H,W,3]
    if image.shape[0] == 1:
        return image[0], "gray"
    if image.shape[0] == 3:
        return np.transpose(image, (1, 2, 0)), None
    return image.mean(axis=0), "gray"


def save_privacy_gallery(path: str | os.PathLike, gallery: dict[str, Any], *, title: str | None = None) -> Path:
    """Write the gallery as a PNG (pairs: synthetic above its nearest training image, labelled with the
    max-SSIM), atomically.

    gallery: the dict returned by :func:`medsyn.metrics.privacy.privacy_gallery` (images float [t,C,H,W] in [0,1])
    """
    for key in ("synthetic_images", "real_images", "values", "synthetic_indices", "real_indices"):
        if key not in gallery:
            raise ValueError(f"gallery is missing {key!r}: pass the dict returned by privacy_gallery")
    count = len(gallery["values"])
    if count == 0:
        raise ValueError("gallery is empty")
    columns = min(count, PAIRS_PER_ROW)
    pair_rows = math.ceil(count / PAIRS_PER_ROW)
    figure = _figure(1.4 * columns, 2.9 * pair_rows + (0.4 if title else 0))
    axes = figure.subplots(2 * pair_rows, columns, squeeze=False)
    for axis in axes.flat:
        axis.set_axis_off()
    for i in range(count):
        row, column = 2 * (i // PAIRS_PER_ROW), i % PAIRS_PER_ROW
        for offset, key, label in (
            (0, "synthetic_images", f"syn {gallery['synthetic_indices'][i]}\nSSIM {gallery['values'][i]:.3f}"),
            (1, "real_images", f"train {gallery['real_indices'][i]}"),
        ):
            image, cmap = _to_display(np.asarray(gallery[key][i]))
            axis = axes[row + offset, column]
            axis.imshow(image, cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest")
            axis.set_title(label, fontsize=7)
    if title:
        figure.suptitle(title, fontsize=9)
    return _write(path, figure)
