"""Privacy figures: the ECDF plot, the Isomap scatter and the gallery render from the result dicts of
medsyn.metrics.privacy."""

import matplotlib.image
import numpy as np
import pytest

from medsyn.metrics.privacy import (
    distance_to_closest_record,
    empirical_epsilon,
    privacy_gallery,
    ssim_max_privacy,
)
from medsyn.report.privacy_figures import save_dcr_ecdf_plot, save_isomap_scatter, save_privacy_gallery

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
    result = empirical_epsilon(real, np.arange(30) % 3, real[:1], [victim], [ablated], k=3)
    path = save_isomap_scatter(tmp_path / "isomap.png", result)
    assert matplotlib.image.imread(path).shape[1] > 100
    with pytest.raises(ValueError, match="epsilon_result"):
        save_isomap_scatter(tmp_path / "y.png", {})


def test_save_gallery_writes_a_png(tmp_path):
    rng = np.random.default_rng(4)
    real = rng.random((6, 1, 10, 10)).astype(np.float32)
    synthetic = rng.random((12, 1, 10, 10)).astype(np.float32)
    ssim = ssim_max_privacy(synthetic, real, q=5, repeats=2)
    path = save_privacy_gallery(tmp_path / "figs" / "gallery.png", privacy_gallery(synthetic, real, ssim, top=10),
                                title="toy")
    picture = matplotlib.image.imread(path)
    # 10 pairs, 8 per row: 2 pair rows, (1.4 x 8) x (2.9 x 2 + 0.4 title) inches at 100 dpi = 1120 x 620 pixels
    assert picture.ndim == 3 and picture.shape[:2] == (620, 1120)
    assert not list(path.parent.glob("*.tmp")) and not list(path.parent.glob(".*"))  # atomic: no temporary left


def test_rgb_gallery(tmp_path):
    rng = np.random.default_rng(0)
    real = rng.random((3, 3, 10, 10)).astype(np.float32)
    synthetic = rng.random((2, 3, 10, 10)).astype(np.float32)
    ssim = ssim_max_privacy(synthetic, real, q=2, repeats=1)
    assert save_privacy_gallery(tmp_path / "rgb.png", privacy_gallery(synthetic, real, ssim)).is_file()


def test_gallery_refuses_a_dict_that_is_not_a_gallery(tmp_path):
    with pytest.raises(ValueError, match="gallery is missing"):
        save_privacy_gallery(tmp_path / "never.png", {})
    assert not (tmp_path / "never.png").exists()
