"""ssim_max against independent oracles: scikit-image (uniform window), a float64 scipy.ndimage
Gaussian SSIM written here (gaussian window) and MONAI SSIMMetric; plus argmax/top-k conventions,
backend selection and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage
from skimage import data as skdata
from skimage.metrics import structural_similarity

from medsyn.metrics import ssim_max

TOL = 1e-5


def skimage_ssim(a: np.ndarray, b: np.ndarray, window: str, data_range: float = 1.0) -> float:
    """a, b [C,H,W] -> skimage SSIM in float64 (mean over channels)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    kwargs = {"data_range": data_range, "channel_axis": 0}
    if window == "gaussian":
        kwargs.update(gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    return structural_similarity(a, b, **kwargs)


def scipy_gaussian_ssim(a: np.ndarray, b: np.ndarray, data_range: float = 1.0) -> float:
    """Independent float64 Gaussian SSIM (Wang et al. 2004): sigma 1.5 truncated at 3.5 sigma (11 taps),
    population covariance, border of 5 pixels cropped; mean over channels and pixels."""
    scores = []
    for x, y in zip(np.asarray(a, np.float64), np.asarray(b, np.float64)):
        blur = lambda image: ndimage.gaussian_filter(image, sigma=1.5, truncate=3.5)
        mx, my = blur(x), blur(y)
        vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
        c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
        s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
        scores.append(s[5:-5, 5:-5].mean())
    return float(np.mean(scores))


def oracle_matrix(syn: np.ndarray, real: np.ndarray, window: str, data_range: float = 1.0) -> np.ndarray:
    """[q, n] SSIM of every pair (float32-rounded inputs, as the metric sees them)."""
    syn = np.asarray(syn, np.float32).reshape(len(syn), -1, *syn.shape[-2:])
    real = np.asarray(real, np.float32).reshape(len(real), -1, *real.shape[-2:])
    if window == "uniform":
        pair = lambda x, y: skimage_ssim(x, y, "uniform", data_range)
    else:
        pair = lambda x, y: scipy_gaussian_ssim(x, y, data_range)
    return np.array([[pair(s, r) for r in real] for s in syn])


def check_against_oracle(result, reference: np.ndarray) -> None:
    np.testing.assert_allclose(result.values.cpu().numpy(), reference.max(axis=1), rtol=0, atol=TOL)
    rows = np.arange(reference.shape[0])
    # the index must point at an image achieving the max
    np.testing.assert_allclose(reference[rows, result.indices.cpu().numpy()], reference.max(axis=1), atol=TOL)


def camera_crops(count: int, size: int, rng: np.random.Generator) -> np.ndarray:
    image = skdata.camera().astype(np.float64) / 255.0
    out = []
    for _ in range(count):
        i, j = rng.integers(0, image.shape[0] - size, size=2)
        out.append(image[i : i + size, j : j + size])
    return np.stack(out)


def dicom_slice(name: str) -> np.ndarray:
    pydicom = pytest.importorskip("pydicom")
    from pydicom.data import get_testdata_file

    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"pydicom test file {name} is not bundled with this pydicom")
    pixels = pydicom.dcmread(path).pixel_array.astype(np.float64)
    return (pixels - pixels.min()) / (pixels.max() - pixels.min())


@pytest.mark.parametrize("window", ["uniform", "gaussian"])
@pytest.mark.parametrize("channels", [1, 3])
def test_random_images_match_oracle(window, channels):
    rng = np.random.default_rng(channels)
    syn = rng.random((3, channels, 23, 29))
    real = rng.random((5, channels, 23, 29))
    real[3] = np.clip(syn[0] + 0.05 * rng.standard_normal(syn[0].shape), 0, 1)
    result = ssim_max(syn, real, window=window)
    assert result.backend == "cpp"
    check_against_oracle(result, oracle_matrix(syn, real, window))
    assert result.indices[0] == 3


@pytest.mark.parametrize("window", ["uniform", "gaussian"])
def test_constant_images_match_oracle(window):
    levels = [0.0, 0.2, 0.7, 1.0]
    syn = np.stack([np.full((16, 18), v) for v in levels])
    rng = np.random.default_rng(0)
    real = np.concatenate([np.stack([np.full((16, 18), v) for v in (0.1, 0.7)]), rng.random((2, 16, 18))])
    result = ssim_max(syn, real, window=window, top_k=4)
    reference = oracle_matrix(syn, real, window)
    check_against_oracle(result, reference)
    np.testing.assert_allclose(result.top_k_values.numpy(), -np.sort(-reference, axis=1), atol=TOL)
    assert result.values[2] == pytest.approx(1.0, abs=1e-12)  # identical constants
    assert result.indices[2] == 1


@pytest.mark.parametrize("window", ["uniform", "gaussian"])
def test_real_images_match_oracle(window):
    rng = np.random.default_rng(1)
    camera = camera_crops(5, 48, rng)
    ct = dicom_slice("CT_small.dcm")  # 128 x 128
    mr = dicom_slice("MR_small.dcm")  # 64 x 64
    medical = [ct[:48, :48], ct[40:88, 50:98], mr[8:56, 8:56], ct[::2, ::2][10:58, 10:58]]
    real = np.stack(list(camera[:3]) + medical[:2])
    syn = np.stack([camera[3], camera[4], medical[2], medical[3], np.clip(medical[0] * 0.95 + 0.02, 0, 1)])
    result = ssim_max(syn, real, window=window, top_k=2)
    reference = oracle_matrix(syn, real, window)
    check_against_oracle(result, reference)
    assert result.indices[4] == 3  # the slightly rescaled CT crop finds its source


def test_rgb_retina_matches_skimage_channel_axis():
    retina = skdata.retina()[::16, ::16].astype(np.float64) / 255.0  # [89, 89, 3]
    images = np.moveaxis(retina, -1, 0)
    syn = np.stack([images[:, :40, :40], images[:, 30:70, 30:70]])
    real = np.stack([images[:, 5:45, 5:45], images[:, 49:89, 49:89], images[:, 30:70, 31:71]])
    result = ssim_max(syn, real)
    reference = np.array(
        [[structural_similarity(s, r, data_range=1.0, channel_axis=0) for r in real] for s in syn]
    )
    check_against_oracle(result, reference)


def test_ties_go_to_the_smallest_index_and_top_k_is_sorted():
    rng = np.random.default_rng(3)
    a, b = rng.random((2, 20, 20))
    syn = np.stack([a, b])
    real = np.stack([b, a, a, b, rng.random((20, 20))])
    for backend in ("cpp", "torch"):
        result = ssim_max(syn, real, top_k=3, backend=backend)
        assert result.indices.tolist() == [1, 0]
        assert result.top_k_indices[:, :2].tolist() == [[1, 2], [0, 3]]
        assert torch.all(result.top_k_values[:, :-1] >= result.top_k_values[:, 1:])
        np.testing.assert_allclose(result.values.numpy(), 1.0, atol=1e-12)


@pytest.mark.parametrize("window", ["uniform", "gaussian"])
def test_torch_twin_equals_cpp_backend(window):
    rng = np.random.default_rng(4)
    syn, real = rng.random((5, 2, 24, 20)), rng.random((7, 2, 24, 20))
    cpp = ssim_max(syn, real, window=window, top_k=7, backend="cpp")
    twin = ssim_max(syn, real, window=window, top_k=7, backend="torch")
    assert twin.backend == "torch"
    np.testing.assert_allclose(cpp.top_k_values.numpy(), twin.top_k_values.numpy(), rtol=0, atol=1e-12)
    assert torch.equal(cpp.top_k_indices, twin.top_k_indices)


@pytest.mark.parametrize("window", ["uniform", "gaussian"])
def test_near_ties_below_float32_resolution_are_decided_in_float64(window):
    # Real images differing from each other by ~1e-6: their SSIMs differ below what the float32 phase can
    # resolve, so the scan must recompute them in float64 and order them exactly like the float64 twin.
    rng = np.random.default_rng(9)
    base = rng.random((1, 1, 24, 24))
    real = np.clip(base + 2e-6 * rng.standard_normal((12, 1, 24, 24)), 0, 1)
    real[5] = base[0]
    syn = np.concatenate([base, np.full((1, 1, 24, 24), 0.5)])
    real = np.concatenate([real, np.full((3, 1, 24, 24), 0.5 + 1e-7), np.full((1, 1, 24, 24), 0.5)])
    cpp = ssim_max(syn, real, window=window, top_k=6, backend="cpp")
    twin = ssim_max(syn, real, window=window, top_k=6, backend="torch")
    assert torch.equal(cpp.top_k_indices, twin.top_k_indices)
    np.testing.assert_allclose(cpp.top_k_values.numpy(), twin.top_k_values.numpy(), rtol=0, atol=1e-12)
    assert cpp.indices[0] == 5


def test_non_default_win_size_and_data_range_match_skimage():
    rng = np.random.default_rng(5)
    syn, real = rng.random((2, 15, 17)) * 4.0, rng.random((3, 15, 17)) * 4.0
    result = ssim_max(syn, real, win_size=5, data_range=4.0)
    syn32, real32 = syn.astype(np.float32).astype(float), real.astype(np.float32).astype(float)
    pair = lambda s, r: structural_similarity(s, r, data_range=4.0, win_size=5)
    reference = np.array([[pair(s, r) for r in real32] for s in syn32])
    check_against_oracle(result, reference)


def test_gaussian_matches_monai_ssim_metric():
    from monai.metrics import SSIMMetric

    rng = np.random.default_rng(6)
    syn, real = rng.random((2, 1, 32, 32)), rng.random((3, 1, 32, 32))
    metric = SSIMMetric(spatial_dims=2, data_range=1.0, kernel_type="gaussian", win_size=11, kernel_sigma=1.5)
    reference = np.array(
        [[float(metric(torch.tensor(s[None]), torch.tensor(r[None])).item()) for r in real] for s in syn]
    )
    result = ssim_max(syn, real, window="gaussian")
    np.testing.assert_allclose(result.values.numpy(), reference.max(axis=1), atol=1e-5)


def test_input_layouts_and_dtypes_work():
    rng = np.random.default_rng(7)
    syn8 = rng.integers(0, 256, (2, 3, 16, 16), dtype=np.uint8)
    real8 = rng.integers(0, 256, (3, 3, 16, 16), dtype=np.uint8)
    result = ssim_max(syn8, real8, data_range=255)
    check_against_oracle(result, oracle_matrix(syn8, real8, "uniform", data_range=255.0))

    syn, real = rng.random((2, 3, 16, 16)), rng.random((3, 3, 16, 16))
    expected = ssim_max(syn, real, top_k=2)
    as_float64 = ssim_max(torch.from_numpy(syn), torch.from_numpy(real), top_k=2)
    channels_last = ssim_max(
        torch.from_numpy(syn).float().to(memory_format=torch.channels_last),
        torch.from_numpy(real).float().to(memory_format=torch.channels_last),
        top_k=2,
    )
    wide = np.zeros((2, 3, 16, 32))
    wide[..., ::2] = syn
    non_contiguous = ssim_max(wide[..., ::2], real, top_k=2)
    transposed = ssim_max(np.ascontiguousarray(np.swapaxes(syn, -1, -2)).swapaxes(-1, -2), real, top_k=2)
    for other in (as_float64, channels_last, non_contiguous, transposed):
        np.testing.assert_allclose(other.top_k_values.numpy(), expected.top_k_values.numpy(), atol=1e-12)
        assert torch.equal(other.top_k_indices, expected.top_k_indices)


@pytest.mark.parametrize(
    "syn, real, kwargs, match",
    [
        (np.full((2, 16, 16), np.nan), np.zeros((2, 16, 16)), {}, "synthetic"),
        (np.zeros((2, 16, 16)), np.full((2, 16, 16), np.inf), {}, "real"),
        (np.zeros((16, 16)), np.zeros((2, 16, 16)), {}, "synthetic"),
        (np.zeros((2, 1, 1, 16, 16)), np.zeros((2, 16, 16)), {}, "synthetic"),
        (np.zeros((2, 16, 16)), np.zeros((2, 16, 17)), {}, "synthetic and real"),
        (np.zeros((2, 1, 16, 16)), np.zeros((2, 3, 16, 16)), {}, "synthetic and real"),
        (np.zeros((0, 16, 16)), np.zeros((2, 16, 16)), {}, "synthetic"),
        (np.zeros((2, 16, 16)), np.zeros((0, 16, 16)), {}, "real"),
        (np.full((2, 16, 16), 1.5), np.zeros((2, 16, 16)), {}, "synthetic"),
        (np.zeros((2, 16, 16)), np.full((2, 16, 16), -0.2), {}, "real"),
        (np.zeros((2, 16, 16)), np.zeros((2, 16, 16)), {"data_range": 0.0}, "data_range"),
        (np.zeros((2, 16, 16)), np.zeros((2, 16, 16)), {"top_k": 3}, "top_k"),
        (np.zeros((2, 16, 16)), np.zeros((2, 16, 16)), {"top_k": 0}, "top_k"),
        (np.zeros((2, 16, 16)), np.zeros((2, 16, 16)), {"window": "box"}, "window"),
        (np.zeros((2, 16, 16)), np.zeros((2, 16, 16)), {"win_size": 4}, "win_size"),
        (np.zeros((2, 6, 6)), np.zeros((2, 6, 6)), {}, "win_size"),
        (np.zeros((2, 16, 16)), np.zeros((2, 16, 16)), {"backend": "gpu"}, "backend"),
        ("images", np.zeros((2, 16, 16)), {}, "synthetic"),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(syn, real, kwargs, match):
    with pytest.raises(ValueError, match=match):
        ssim_max(syn, real, **kwargs)


def test_cuda_backend_equals_cpp():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU (torch.cuda.is_available() is False); the CUDA kernel is only compiled")
    rng = np.random.default_rng(8)
    syn, real = rng.random((6, 2, 40, 36)), rng.random((9, 2, 40, 36))
    for window in ("uniform", "gaussian"):
        cpp = ssim_max(syn, real, window=window, top_k=3, backend="cpp")
        gpu = ssim_max(torch.from_numpy(syn).cuda(), torch.from_numpy(real).cuda(), window=window, top_k=3)
        assert gpu.backend == "cuda"
        np.testing.assert_allclose(gpu.top_k_values.cpu().numpy(), cpp.top_k_values.numpy(), atol=1e-9)
        assert torch.equal(gpu.top_k_indices.cpu(), cpp.top_k_indices)
