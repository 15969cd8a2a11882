"""``ssim_max``: for each synthetic image, the largest SSIM against every real image (and which one).

This is the privacy scan of paper 000 §4.1.6 (memorisation shows up as a synthetic image whose most
similar training image is nearly identical), run over every pair instead of a subsample.

Windows (one source of truth for the constants below):

- ``window="uniform"`` (default): ``win_size`` x ``win_size`` box (default 7), sample covariance
  (x N/(N-1)), border of (win_size-1)//2 cropped, K1=0.01, K2=0.03: identical to
  ``skimage.metrics.structural_similarity(a, b, data_range=data_range)`` with its defaults.
- ``window="gaussian"``: 11 x 11 Gaussian, sigma 1.5 (Wang et al. 2004), population covariance: identical
  to skimage with ``gaussian_weights=True, sigma=1.5, use_sample_covariance=False`` (skimage truncates
  at 3.5 sigma -> radius 5 -> 11 taps). MONAI ``SSIMMetric(spatial_dims=2)`` (kernel_type="gaussian",
  win_size=11, kernel_sigma=1.5) computes the same map: the same normalised sampled Gaussian, "valid"
  convolution (= the cropped region), no covariance correction, mean over channels and pixels; it only
  differs by working in float32 (differences ~1e-6) and it only supports pairs, not a max over a set.
  ``win_size`` may change the Gaussian's extent (as MONAI's ``win_size``); skimage ignores it.

Multi-channel images: the mean SSIM over channels (= skimage with ``channel_axis``).
Constant images are well defined: C1 = (K1 data_range)^2 and C2 = (K2 data_range)^2 keep the
denominators positive (two equal constant images score 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from medsyn.kernels.dispatch import cpu_kernels, cuda_kernels, resolve_backend
from medsyn.kernels.ssim_torch import ssim_max_torch
from medsyn.metrics.validation import as_image_batch, check_same_image_size

__all__ = ["ssim_max", "SSIMMaxResult", "SSIMWindow", "ssim_window", "WINDOWS"]

# Wang et al. 2004 (IEEE TIP 13(4)), §III-B, and the scikit-image defaults that follow it.
K1 = 0.01
K2 = 0.03
UNIFORM_WIN_SIZE = 7
GAUSSIAN_SIGMA = 1.5
GAUSSIAN_TRUNCATE = 3.5  # skimage/scipy: radius = int(3.5 * 1.5 + 0.5) = 5 -> 11 taps
GAUSSIAN_WIN_SIZE = 2 * int(GAUSSIAN_TRUNCATE * GAUSSIAN_SIGMA + 0.5) + 1
WINDOWS = ("uniform", "gaussian")


@dataclass(frozen=True)
class SSIMWindow:
    """Everything the kernels need to know about the window: separable 1-D weights [win] (sum 1),
    the covariance scale (N/(N-1) for the sample covariance, else 1) and C1, C2."""

    weights: np.ndarray
    covariance_scale: float
    c1: float
    c2: float

    @property
    def size(self) -> int:
        return int(self.weights.shape[0])


def ssim_window(window: str = "uniform", win_size: int | None = None, data_range: float = 1.0) -> SSIMWindow:
    """Build the window; raises ValueError naming ``window``/``win_size``/``data_range``."""
    if window not in WINDOWS:
        raise ValueError(f"window must be one of {WINDOWS}, got {window!r}")
    if not (isinstance(data_range, (int, float)) and np.isfinite(data_range) and data_range > 0):
        raise ValueError(f"data_range must be a positive number, got {data_range!r}")
    default = UNIFORM_WIN_SIZE if window == "uniform" else GAUSSIAN_WIN_SIZE
    size = default if win_size is None else win_size
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 3 or size % 2 == 0:
        raise ValueError(f"win_size must be an odd integer >= 3, got {win_size!r}")
    size = int(size)
    if window == "uniform":
        weights = np.full(size, 1.0 / size)
        covariance_scale = size * size / (size * size - 1.0)
    else:
        offsets = np.arange(size, dtype=np.float64) - size // 2
        weights = np.exp(-0.5 * (offsets / GAUSSIAN_SIGMA) ** 2)
        weights /= weights.sum()
        covariance_scale = 1.0
    return SSIMWindow(weights, covariance_scale, (K1 * data_range) ** 2, (K2 * data_range) ** 2)


@dataclass(frozen=True)
class SSIMMaxResult:
    """values float64 [q]: max SSIM of each synthetic image; indices int64 [q]: the real image reaching it
    (ties -> smallest index); top_k_values float64 [q, k] (descending) and top_k_indices int64 [q, k];
    backend: the backend that ran ("cpp", "cuda" or "torch")."""

    values: torch.Tensor
    indices: torch.Tensor
    top_k_values: torch.Tensor
    top_k_indices: torch.Tensor
    backend: str


def _ssim_max_cpp(synthetic: torch.Tensor, real: torch.Tensor, win: SSIMWindow, top_k: int):
    kernels = cpu_kernels()
    values, indices = kernels.ssim_max(
        synthetic.cpu().numpy(), real.cpu().numpy(), win.weights, win.covariance_scale, win.c1, win.c2, top_k
    )
    return torch.from_numpy(values), torch.from_numpy(indices)


def _ssim_max_cuda(synthetic: torch.Tensor, real: torch.Tensor, win: SSIMWindow, top_k: int):
    kernels = cuda_kernels()
    device = synthetic.device
    if device.type != "cuda":  # backend="cuda" on CPU inputs: copy them to the current GPU
        device = torch.device("cuda", torch.cuda.current_device())
    synthetic = synthetic.to(device).contiguous()
    real = real.to(device).contiguous()
    n_syn, channels, height, width = synthetic.shape
    values = torch.empty(n_syn, top_k, dtype=torch.float64, device=device)
    indices = torch.empty(n_syn, top_k, dtype=torch.int64, device=device)
    stream = torch.cuda.current_stream(device).cuda_stream
    # Raw device pointers: the CUDA module is torch-agnostic (the CPU torch build has no CUDA headers).
    kernels.ssim_max(
        synthetic.data_ptr(), n_syn, real.data_ptr(), real.shape[0], channels, height, width,
        [float(w) for w in win.weights], win.covariance_scale, win.c1, win.c2, top_k,
        values.data_ptr(), indices.data_ptr(), stream,
    )
    return values, indices


def ssim_max(
    synthetic: Any,
    real: Any,
    *,
    window: str = "uniform",
    win_size: int | None = None,
    data_range: float = 1.0,
    top_k: int = 1,
    backend: str = "auto",
) -> SSIMMaxResult:
    """Max SSIM of each synthetic image over a set of real images.

    synthetic: images [q,H,W] or [q,C,H,W]; real: [n,H,W] or [n,C,H,W] with the same C, H, W.
    Values in [0, data_range] (torch or numpy; float64, uint8, non-contiguous and channels-last inputs
    are converted once to contiguous float32; uint8 images need ``data_range=255``).
    window: "uniform" (skimage defaults) or "gaussian" (11x11, sigma 1.5); see the module docstring.
    top_k: how many most-similar real images to return per synthetic image (1 <= top_k <= n).
    backend: "auto" | "cpp" | "cuda" | "torch" (medsyn.kernels.dispatch).
    Returns SSIMMaxResult (values, indices, top_k_values, top_k_indices) on the compute device.
    Raises ValueError naming the argument for NaN/inf, wrong rank, mismatched sizes, empty sets,
    values outside [0, data_range], images smaller than the window, or a bad top_k/window/backend.
    """
    win = ssim_window(window, win_size, data_range)
    synthetic_images = as_image_batch(synthetic, "synthetic", data_range=data_range)
    real_images = as_image_batch(real, "real", data_range=data_range)
    check_same_image_size(synthetic_images, "synthetic", real_images, "real")
    height, width = synthetic_images.shape[-2:]
    if min(height, width) < win.size:
        raise ValueError(
            f"win_size={win.size} is larger than the images ({height}x{width}); pass a smaller odd win_size"
        )
    n_real = real_images.shape[0]
    if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or not 1 <= top_k <= n_real:
        raise ValueError(
            f"top_k must be an integer in [1, {n_real}] (the number of real images), got {top_k!r}"
        )
    if synthetic_images.device != real_images.device:
        raise ValueError(f"synthetic is on {synthetic_images.device} but real is on {real_images.device}")
    chosen = resolve_backend(backend, synthetic_images.device)
    if chosen == "cpp":
        values, indices = _ssim_max_cpp(synthetic_images, real_images, win, int(top_k))
    elif chosen == "cuda":
        values, indices = _ssim_max_cuda(synthetic_images, real_images, win, int(top_k))
    else:
        values, indices = ssim_max_torch(
            synthetic_images,
            real_images,
            torch.from_numpy(win.weights),
            win.covariance_scale,
            win.c1,
            win.c2,
            int(top_k),
        )
    return SSIMMaxResult(values[:, 0].clone(), indices[:, 0].clone(), values, indices, chosen)
