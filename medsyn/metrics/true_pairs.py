"""PSNR and SSIM on true pairs (paper 001 Table 1): each real image against the generator's reconstruction
of that same image, so the pairing is known (not a nearest-neighbour match).

    true_pair_psnr_ssim(real, reconstructions)   # {"psnr": mean dB, "ssim": mean SSIM}

Computed with scikit-image's ``peak_signal_noise_ratio`` and ``structural_similarity`` (Gaussian-free 7x7
window, data_range 1), averaged over pairs.
"""

from __future__ import annotations

import torch

__all__ = ["true_pair_psnr_ssim"]


def true_pair_psnr_ssim(real: torch.Tensor, reconstructions: torch.Tensor) -> dict[str, float]:
    """real, reconstructions: float [N,C,H,W] in [0, 1], pair i = (real[i], reconstructions[i])."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    if real.shape != reconstructions.shape or real.ndim != 4 or real.shape[0] == 0:
        raise ValueError(
            f"real and reconstructions must both be non-empty [N,C,H,W] of the same shape, got "
            f"{tuple(real.shape)} and {tuple(reconstructions.shape)}"
        )
    a = real.detach().float().cpu().numpy()
    b = reconstructions.detach().float().clamp(0, 1).cpu().numpy()
    psnr = [peak_signal_noise_ratio(x, y, data_range=1.0) for x, y in zip(a, b)]
    ssim = [structural_similarity(x, y, data_range=1.0, channel_axis=0) for x, y in zip(a, b)]
    return {"psnr": float(sum(psnr) / len(psnr)), "ssim": float(sum(ssim) / len(ssim))}
