"""Public metric API (stable names, see shared/DESIGN.md).

    from medsyn.metrics import ssim_max, prdc, nearest_neighbors, ecdf_distance, fid, kid, inception_score

Imported eagerly on purpose: the functions share their modules' names (``medsyn.metrics.prdc`` holds
``prdc``), and a lazily resolved name would be shadowed by the submodule as soon as anything imports it.
"""

from medsyn.metrics.ecdf import ecdf_distance
from medsyn.metrics.fid import fid
from medsyn.metrics.inception_score import inception_score
from medsyn.metrics.kid import kid
from medsyn.metrics.neighbors import nearest_neighbors
from medsyn.metrics.prdc import prdc
from medsyn.metrics.ssim import SSIMMaxResult, ssim_max

__all__ = ["SSIMMaxResult", "ecdf_distance", "fid", "inception_score", "kid", "nearest_neighbors", "prdc", "ssim_max"]
