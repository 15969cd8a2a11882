"""Privacy figures: the ECDF plot and the Isomap scatter render from the result dicts."""

import matplotlib.image
import numpy as np
import pytest

from medsyn.metrics.privacy import (
    distance_to_closest_record,
    empirical_epsilon,
    save_dcr_ecdf_plot,
    save_isomap_scatter,
)

pytestmark = pytest.mark.filterwarnings("ignore:The number of connected components:UserWarning")


def test_ecdf_plot(tmp_path):
    rng = np.random.default_rng(0)
    train, holdout, synthetic = (rng.random((n, 1, 6, 6)).astype(np.float32) for n in (12, 8, 10))
    path = save_dcr_ecdf_plot(tmp_path / "ecdf.png", distance_to_closest_record(synthetic, train, holdout), title="t")
    assert matplotlib.image.imread(path).shape[0] > 100
    with pytest.raises(ValueError, match="dcr_result"):
        save_dcr_ecdf_plot(tmp_path / "x.png", {"value": 1})


def test_isomap_scatter(tmp_path):
    rng = np.random.default_rng(1)
    real = rng.random((30, 1, 5, 5))
    victim, ablated = rng.random((40, 1, 5, 5)), rng.random((40, 1, 5, 5))
    result = empirical_epsilon(real, real[:1], [victim], [ablated], k=3)
    path = save_isomap_scatter(tmp_path / "isomap.png", result)
    assert matplotlib.image.imread(path).shape[1] > 100
    with pytest.raises(ValueError, match="epsilon_result"):
        save_isomap_scatter(tmp_path / "y.png", {})
