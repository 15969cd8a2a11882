import numpy as np
import pytest
import torch

from medsyn.metrics.validation import as_feature_matrix, as_image_batch, as_sample_vector


def test_image_batch_never_modifies_the_callers_tensor():
    images = torch.full((2, 1, 4, 4), 1.00001)
    out = as_image_batch(images, "images")
    assert float(images.max()) == pytest.approx(1.00001)  # unchanged
    assert float(out.max()) == 1.0


def test_image_batch_accepts_layouts_and_dtypes():
    base = np.random.default_rng(0).random((3, 5, 6, 2)).astype(np.float64)
    channels_last = torch.from_numpy(base).permute(0, 3, 1, 2)  # [N,C,H,W] view, non-contiguous
    out = as_image_batch(channels_last, "images")
    assert out.is_contiguous() and out.dtype == torch.float32 and out.shape == (3, 2, 5, 6)
    assert as_image_batch(np.zeros((2, 4, 4), np.uint8), "x").shape == (2, 1, 4, 4)


@pytest.mark.parametrize(
    "value, message",
    [
        (torch.zeros(4, 4), "images must be images"),
        (torch.zeros(0, 1, 4, 4), "images is empty"),
        (torch.full((1, 1, 4, 4), float("nan")), "NaN"),
        (torch.full((1, 1, 4, 4), 2.0), r"\[0, data_range=1.0\]"),
        ([[0.0]], "torch.Tensor or numpy.ndarray"),
    ],
)
def test_image_batch_errors_name_the_argument(value, message):
    with pytest.raises(ValueError, match=message):
        as_image_batch(value, "images")


def test_feature_and_sample_checks():
    with pytest.raises(ValueError, match="real must be a feature matrix"):
        as_feature_matrix(torch.zeros(3), "real")
    with pytest.raises(ValueError, match="real needs at least 4"):
        as_feature_matrix(torch.zeros(3, 2), "real", min_rows=4)
    with pytest.raises(ValueError, match="a is empty"):
        as_sample_vector(np.array([]), "a")
    assert as_sample_vector(np.array([1, 2]), "a").dtype == torch.float64


def test_public_names_are_the_functions_even_after_submodule_imports():
    import importlib

    import medsyn.metrics as metrics

    modules = {"prdc": "prdc", "fid": "fid", "kid": "kid", "ssim_max": "ssim", "nearest_neighbors": "neighbors",
               "ecdf_distance": "ecdf"}
    for name, module in modules.items():
        importlib.import_module(f"medsyn.metrics.{module}")
        assert callable(getattr(metrics, name)), name
    from medsyn.metrics import fid, prdc

    assert callable(prdc) and callable(fid)
