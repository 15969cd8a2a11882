"""The denoising-diffusion process shared by the pixel DDPM and the latent diffusion model.

Both models learn a class-conditional noise predictor ``predict_noise(x_t, t, labels) -> epsilon`` and
differ only in what ``x`` is (pixels in [-1, 1] or scaled autoencoder latents) and in how the label enters
the U-Net (a class embedding added to the time embedding, or a cross-attention context). This module holds
what they share:

- ``build_scheduler``: MONAI's ``DDPMScheduler`` (ancestral sampling over all T steps, Ho et al. 2020) or
  ``DDIMScheduler`` (k <= T steps, Song et al. 2021) for a noise schedule.
- ``noise_prediction_loss``: the "simple" DDPM objective, per-sample MSE between the noise added at a
  random timestep and the predicted noise, with classifier-free label dropout (Ho & Salimans 2022).
- ``reverse_diffusion``: the sampling loop from x_T ~ N(0, I) to x_0 with optional classifier-free guidance,
  deterministic for a seed.
- ``DiffusionSamplingConfig``: how a generator's ``sample`` runs the reverse process (sampler, steps, eta,
  guidance), and ``sample_chunks``: ``reverse_diffusion`` over any number of labels, streamed chunk by
  chunk and seeded per chunk (``sample_in_chunks``: the same, concatenated).

Labels: int64 in [0, num_classes) for a class, and ``null_label`` (= num_classes) for "no class", the
unconditional model that classifier-free guidance needs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import torch
from monai.networks.schedulers import DDIMScheduler, DDPMScheduler

from medsyn.training.settings import config_from_mapping

__all__ = [
    "DiffusionSamplingConfig",
    "NoisePredictor",
    "NoiseSchedule",
    "SAMPLERS",
    "SAMPLE_CHUNK",
    "build_scheduler",
    "drop_labels",
    "noise_prediction_loss",
    "reverse_diffusion",
    "reverse_diffusion_steps",
    "sample_chunks",
    "sample_in_chunks",
]

NoisePredictor = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
"""(x_t float [B,C,H,W], timesteps int64 [B], labels int64 [B] in [0, num_classes]) -> epsilon float [B,C,H,W]."""

SAMPLERS = ("ddpm", "ddim")

SAMPLE_CHUNK = 256  # labels denoised together in ``sample_chunks``; part of what a seed determines


@dataclass(frozen=True)
class NoiseSchedule:
    """The forward-process variance schedule (MONAI schedule names: "linear_beta", "scaled_linear_beta", ...).

    clip_sample: clip the predicted x_0 to [-1, 1] at each reverse step (right for pixels in [-1, 1], wrong
    for latents, which are not bounded).
    """

    num_train_timesteps: int
    schedule: str
    beta_start: float
    beta_end: float
    clip_sample: bool


def build_scheduler(schedule: NoiseSchedule, sampler: str = "ddpm") -> DDPMScheduler | DDIMScheduler:
    """A fresh MONAI scheduler (epsilon prediction) for ``schedule``; ``sampler`` is "ddpm" or "ddim"."""
    common = {
        "num_train_timesteps": schedule.num_train_timesteps,
        "schedule": schedule.schedule,
        "beta_start": schedule.beta_start,
        "beta_end": schedule.beta_end,
        "clip_sample": schedule.clip_sample,
        "prediction_type": "epsilon",
    }
    if sampler == "ddpm":
        return DDPMScheduler(**common)
    if sampler == "ddim":
        return DDIMScheduler(**common)
    raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")


def drop_labels(labels: torch.Tensor, null_label: int, probability: float) -> torch.Tensor:
    """Replace each label by ``null_label`` with ``probability`` (classifier-free guidance training).

    Draws from the global torch RNG, which the training loop seeds and restores on resume.
    """
    if not 0.0 <= probability <= 1.0:
        raise ValueError(f"label dropout probability must lie in [0, 1], got {probability}")
    if probability == 0.0:
        return labels
    dropped = torch.rand(labels.shape, device=labels.device) < probability
    return torch.where(dropped, torch.full_like(labels, null_label), labels)


def noise_prediction_loss(
    predict_noise: NoisePredictor,
    x_start: torch.Tensor,
    labels: torch.Tensor,
    scheduler: DDPMScheduler,
    *,
    null_label: int,
    label_dropout: float,
) -> torch.Tensor:
    """Per-sample loss float [B]: mean over C,H,W of (epsilon - predict_noise(x_t, t, labels'))^2.

    x_start: float [B,C,H,W], the clean data (pixels in [-1, 1] or scaled latents).
    labels: int64 [B] in [0, null_label); each is replaced by ``null_label`` with ``label_dropout``.
    t ~ U{0, ..., T-1} and epsilon ~ N(0, I) come from the global torch RNG.
    Returned per sample so DP-SGD can average an (possibly empty) Poisson batch itself.
    """
    batch = x_start.shape[0]
    noise = torch.randn_like(x_start)
    timesteps = torch.randint(0, scheduler.num_train_timesteps, (batch,), device=x_start.device, dtype=torch.long)
    x_noisy = scheduler.add_noise(original_samples=x_start, noise=noise, timesteps=timesteps)
    predicted = predict_noise(x_noisy, timesteps, drop_labels(labels, null_label, label_dropout))
    return (predicted - noise).pow(2).flatten(1).mean(dim=1)


def reverse_diffusion_steps(
    schedule: NoiseSchedule, sampler: str, steps: int | None, *, eta: float = 0.0, guidance_scale: float = 1.0
) -> int:
    """The number of reverse steps ``reverse_diffusion`` runs for these arguments (ValueError for a bad
    sampler, steps, eta or guidance_scale): T for "ddpm", ``steps`` (default 50, at most T) for "ddim"."""
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
    if not guidance_scale >= 0.0:
        raise ValueError(f"guidance_scale must be >= 0, got {guidance_scale}")
    if not eta >= 0.0:
        raise ValueError(f"eta must be >= 0, got {eta}")
    total = schedule.num_train_timesteps
    if sampler == "ddpm":
        if steps not in (None, total):
            raise ValueError(f"the ddpm sampler runs all {total} training timesteps; got steps={steps} (use ddim)")
        return total
    steps = 50 if steps is None else steps
    if not isinstance(steps, int) or isinstance(steps, bool) or not 1 <= steps <= total:
        raise ValueError(f"ddim steps must be an integer in [1, {total}], got {steps!r}")
    return steps


@torch.no_grad()
def reverse_diffusion(
    predict_noise: NoisePredictor,
    labels: torch.Tensor,
    *,
    shape: tuple[int, int, int],
    schedule: NoiseSchedule,
    null_label: int,
    seed: int,
    sampler: str = "ddim",
    steps: int | None = None,
    eta: float = 0.0,
    guidance_scale: float = 1.0,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Run the reverse process for each label; return x_0 float32 [N, *shape] (not clipped).

    labels: int64 [N] in [0, null_label).
    sampler: "ddpm" runs all T ancestral steps (``steps`` must be None or T); "ddim" runs ``steps``
        (default 50, at most T) DDIM steps at timesteps (k-1)T//k, ..., T//k, 0 with stochasticity
        ``eta`` (0: deterministic DDIM).
    guidance_scale: s in epsilon = eps(x, null) + s * (eps(x, y) - eps(x, null)); 1 is the plain
        conditional model (one U-Net call per step), s > 1 strengthens the class (Ho & Salimans 2022;
        their w = s - 1). Conditional and unconditional predictions share one batched call, so the
        U-Net is called exactly once per step either way.
    Deterministic for a seed: x_T and the per-step noise come from a private generator.
    """
    steps = reverse_diffusion_steps(schedule, sampler, steps, eta=eta, guidance_scale=guidance_scale)
    total = schedule.num_train_timesteps
    scheduler = build_scheduler(schedule, sampler)
    scheduler.set_timesteps(steps)
    if sampler == "ddim":
        # MONAI 1.6's DDIM visits round(linspace(T-1, 0, k)) but each step lands on t - T // k, so from the
        # second step on the network sees a timestep that is not the noise level of its input (999 -> 899,
        # then evaluated as 888). Use the timesteps the step rule implies, Song et al.'s uniform skip
        # (k-1) * T // k, ..., T // k, 0, so every step starts where the previous one ended.
        stride = total // steps
        scheduler.timesteps = torch.arange(steps - 1, -1, -1, dtype=torch.long) * stride
    generator = torch.Generator(device=device).manual_seed(int(seed))
    x = torch.randn((len(labels), *shape), generator=generator, device=device)
    labels = labels.to(device)
    guided = guidance_scale != 1.0
    model_labels = torch.cat([labels, torch.full_like(labels, null_label)]) if guided else labels
    for t in scheduler.timesteps:
        model_input = torch.cat([x, x]) if guided else x
        timesteps = torch.full((len(model_input),), int(t), device=device, dtype=torch.long)
        epsilon = predict_noise(model_input, timesteps, model_labels)
        if guided:
            conditional, unconditional = epsilon.chunk(2)
            epsilon = unconditional + guidance_scale * (conditional - unconditional)
        if sampler == "ddim":
            x, _ = scheduler.step(epsilon, int(t), x, eta=eta, generator=generator)
        else:
            x, _ = scheduler.step(epsilon, int(t), x, generator=generator)
    return x.float()


@dataclass(frozen=True)
class DiffusionSamplingConfig:
    """How ``sample`` runs the reverse process (shared by the pixel DDPM and the LDM).

    sampler: "ddpm" (all num_train_timesteps ancestral steps) or "ddim".
    sampling_steps: DDIM steps (ignored by "ddpm").
    eta: DDIM stochasticity (0: deterministic DDIM, 1: DDPM-like variance).
    guidance_scale: classifier-free guidance s (1: plain conditional model, one U-Net call per step).
    """

    sampler: str = "ddim"
    sampling_steps: int = 50
    eta: float = 0.0
    guidance_scale: float = 1.0

    def __post_init__(self) -> None:
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, got {self.sampler!r}")
        if not isinstance(self.sampling_steps, int) or isinstance(self.sampling_steps, bool) or self.sampling_steps < 1:
            raise ValueError(f"sampling_steps must be a positive integer, got {self.sampling_steps!r}")
        for key in ("eta", "guidance_scale"):
            value = getattr(self, key)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{key} must be a finite number >= 0, got {value!r}")

    def with_overrides(self, overrides: Mapping[str, Any], what: str) -> DiffusionSamplingConfig:
        """This config with ``overrides`` (``sample``'s keyword arguments) applied; an unknown or ill-typed
        key raises naming ``what``."""
        return config_from_mapping(DiffusionSamplingConfig, {**asdict(self), **overrides}, what=what)


def sample_chunks(
    predict_noise: NoisePredictor,
    labels: torch.Tensor,
    *,
    shape: tuple[int, int, int],
    schedule: NoiseSchedule,
    sampling: DiffusionSamplingConfig,
    null_label: int,
    seed: int,
) -> Iterator[torch.Tensor]:
    """``reverse_diffusion`` over consecutive chunks of SAMPLE_CHUNK labels, chunk i seeded with (seed, i):
    yields x_0 [<= SAMPLE_CHUNK, *shape] per chunk (nothing for no labels), one chunk denoised per ``next()``.

    ``sampling`` is checked against ``schedule`` (e.g. DDIM steps <= T) when this is called, not at the
    first chunk, and SAMPLE_CHUNK is read then.
    """
    steps = None if sampling.sampler == "ddpm" else sampling.sampling_steps
    reverse_diffusion_steps(
        schedule, sampling.sampler, steps, eta=sampling.eta, guidance_scale=sampling.guidance_scale
    )
    return _denoised_chunks(
        predict_noise, labels, shape, schedule, sampling, null_label, int(seed), SAMPLE_CHUNK
    )


def _denoised_chunks(
    predict_noise: NoisePredictor,
    labels: torch.Tensor,
    shape: tuple[int, int, int],
    schedule: NoiseSchedule,
    sampling: DiffusionSamplingConfig,
    null_label: int,
    seed: int,
    chunk: int,
) -> Iterator[torch.Tensor]:
    for index, start in enumerate(range(0, len(labels), chunk)):
        yield reverse_diffusion(
            predict_noise,
            labels[start : start + chunk],
            shape=shape,
            schedule=schedule,
            null_label=null_label,
            seed=seed * 1_000_003 + index,
            sampler=sampling.sampler,
            steps=None if sampling.sampler == "ddpm" else sampling.sampling_steps,
            eta=sampling.eta,
            guidance_scale=sampling.guidance_scale,
        )


def sample_in_chunks(
    predict_noise: NoisePredictor,
    labels: torch.Tensor,
    *,
    shape: tuple[int, int, int],
    schedule: NoiseSchedule,
    sampling: DiffusionSamplingConfig,
    null_label: int,
    seed: int,
) -> torch.Tensor:
    """``sample_chunks``' chunks concatenated: x_0 [N, *shape] (an empty [0, *shape] for no labels)."""
    chunks = sample_chunks(
        predict_noise, labels, shape=shape, schedule=schedule, sampling=sampling, null_label=null_label, seed=seed
    )
    outputs = list(chunks)
    if not outputs:
        return torch.zeros(0, *shape)
    return torch.cat(outputs)
