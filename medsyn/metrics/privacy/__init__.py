"""Privacy suite: SSIM-max (paper 000 §4.1.6), distance to closest record with ECDF KS/area and empirical
epsilon (paper 001 §3.2), and the gallery of the most similar synthetic/training pairs. Their figures are
drawn by ``medsyn.report.privacy_figures``.

Result names: ``ssim_max_paper``, ``ssim_max_full``, ``dcr_ks``, ``dcr_area``,
``empirical_epsilon_<worst|mean>_<paper_code|with_d>`` (``empirical_epsilon.RESULT_NAMES``).
"""

from medsyn.metrics.privacy.dcr import distance_to_closest_record
from medsyn.metrics.privacy.empirical_epsilon import (
    empirical_epsilon,
    empirical_epsilon_from_samples,
    minority_class_queries,
    run_empirical_epsilon_experiment,
)
from medsyn.metrics.privacy.gallery import privacy_gallery
from medsyn.metrics.privacy.knn_density import knn_log_density
from medsyn.metrics.privacy.ssim_max_protocol import ssim_max_privacy

__all__ = [
    "distance_to_closest_record",
    "empirical_epsilon",
    "empirical_epsilon_from_samples",
    "knn_log_density",
    "minority_class_queries",
    "privacy_gallery",
    "run_empirical_epsilon_experiment",
    "ssim_max_privacy",
]
