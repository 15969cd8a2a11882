import numpy as np
import pytest
import torch

from medsyn.metrics.validation import as_feature_matrix, as_image_batch, as_sample_vector, float_resolution


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


# ---- issue 11 item 7: complex, inexact integers, float64 beyond float32's range --------------------------------


@pytest.mark.parametrize(
    "value, message",
    [
        (np.ones((3, 2), dtype=np.complex128), "feats must be real, got complex numpy dtype complex128"),
        (torch.ones(3, 2, dtype=torch.complex64), "feats must be real, got complex dtype torch.complex64"),
        (np.array([[2**53 + 1, 0]], dtype=np.int64), r"feats holds integers in \[0, 9007199254740993\]"),
        (torch.tensor([[-(2**63), 0]]), r"feats holds integers in \[-9223372036854775808, 0\]"),
        (np.array([[2**64 - 1, 0]], dtype=np.uint64), "feats holds integers"),
    ],
)
def test_complex_and_inexact_integers_are_refused_by_every_checker(value, message):
    for check in (as_feature_matrix, as_image_batch):
        with pytest.raises(ValueError, match=message):
            check(value, "feats")
    with pytest.raises(ValueError, match=message):
        as_sample_vector(value.reshape(-1), "feats")


def test_integers_up_to_two_to_the_53_are_exact():
    value = np.array([[2**53, -(2**53), 3]], dtype=np.int64)
    out = as_feature_matrix(value, "feats", dtype=None)
    assert out.dtype == torch.float64 and out[0].tolist() == [2.0**53, -(2.0**53), 3.0]
    assert as_sample_vector(value[0], "a").tolist() == [2.0**53, -(2.0**53), 3.0]


def test_float64_beyond_float32_range_is_finite_not_nan_or_inf():
    value = np.full((3, 2), 1e39)
    with pytest.raises(ValueError, match=r"feats has values up to 1e\+39 in magnitude, beyond float32's range"):
        as_feature_matrix(value, "feats")  # the float32 checker says why, instead of "NaN or inf"
    assert as_feature_matrix(value, "feats", dtype=torch.float64).max().item() == 1e39
    assert as_feature_matrix(value, "feats", dtype=None).dtype == torch.float64
    with pytest.raises(ValueError, match=r"images must lie in \[0, data_range=1.0\], got values in \[1e\+39, 1e\+39\]"):
        as_image_batch(value[None], "images")
    assert as_sample_vector(value[0], "a").tolist() == [1e39, 1e39]


def test_nan_is_still_reported_as_nan_in_every_dtype():
    for dtype in (np.float16, np.float32, np.float64):
        with pytest.raises(ValueError, match="feats contains 1 NaN or inf"):
            as_feature_matrix(np.array([[np.nan, 1.0]], dtype=dtype), "feats", dtype=None)


def test_feature_dtype_argument_is_checked():
    with pytest.raises(ValueError, match="dtype must be torch.float32, torch.float64 or None"):
        as_feature_matrix(np.zeros((2, 2)), "feats", dtype=torch.int64)


def test_float_resolution_is_the_machine_epsilon_of_the_input_dtype():
    assert float_resolution(torch.zeros(1, dtype=torch.float16)) == 2.0**-10
    assert float_resolution(np.zeros(1, dtype=np.float16)) == 2.0**-10
    assert float_resolution(torch.zeros(1, dtype=torch.bfloat16)) == 2.0**-7
    assert float_resolution(np.zeros(1)) == 2.0**-52
    assert float_resolution(np.zeros(1, dtype=np.int64)) == 2.0**-23
