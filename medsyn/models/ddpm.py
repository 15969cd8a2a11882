"""Class-conditional pixel DDPM (paper 001 §3; Ho et al. 2020) on MONAI's ``DiffusionModelUNet``.

The U-Net predicts the noise added to an image in [-1, 1] at timestep t, conditioned on the class through
a learned class embedding added to the time embedding (``num_class_embeds = num_classes + 1``: the extra
index is the "no class" token of classifier-free guidance, used for a fraction ``label_dropout`` of the
training labels). Training minimises the per-sample noise MSE (``noise_prediction_loss``); an exponential
moving average of the weights is kept and used for sampling. Sampling runs DDPM ancestral steps (all T)
or DDIM steps (configurable count and eta), with optional guidance (``reverse_diffusion``). The fitting
loop and the sampler are the diffusion library's, shared with the LDM (``medsyn.models.diffusion_generator``
and the modules it names); here x is the image, scaled from [0, 1] to [-1, 1].

Paper 001 does not print its DDPM's architecture or optimiser, so the defaults are those of the DDPM
paper's 32x32 model [Ho]; classifier-free guidance follows [CFG]. Under DP-SGD (``training.dp``) the
whole U-Net is private (paper 001 §3.1: "in VAE and DDPM, the entire architecture is typically affected
by noise disturbance"); it already uses GroupNorm, so Opacus' ModuleValidator accepts it unchanged.

[Ho] Ho, Jain, Abbeel 2020, Denoising diffusion probabilistic models, §4 and App. B (CIFAR-10 model).
[CFG] Ho & Salimans 2022, Classifier-free diffusion guidance, §3-4.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from medsyn.data.image_set import ImageSet
from medsyn.models.base import (
    check_divisible,
    check_training_set,
    count_parameters,
    join_batches,
    training_set_metadata,
)
from medsyn.models.diffusion_generator import DiffusionGenerator, check_diffusion_config, diffusion_unet
from medsyn.models.diffusion_sampling import DiffusionSamplingConfig, NoiseSchedule
from medsyn.training.ema import ExponentialMovingAverage
from medsyn.training.settings import TrainingSettings

__all__ = ["DDPMConfig", "ClassEmbeddingUNet", "ConditionalDDPM"]


@dataclass(frozen=True)
class DDPMConfig:
    """Pixel DDPM hyper-parameters; defaults are the DDPM paper's 32x32 model [Ho] (paper 001 gives none).

    channels: U-Net channels per resolution level [Ho: 128 x (1, 2, 2, 2)]; H and W must be divisible by
        2 ** (len(channels) - 1).
    attention_levels: self-attention per level [Ho: at 16x16, the second level of a 32x32 model].
    num_res_blocks: residual blocks per level [Ho: 2].
    num_head_channels: channels per attention head.
    norm_num_groups: GroupNorm groups [Ho: 32]; must divide every entry of channels.
    num_train_timesteps, beta_schedule, beta_start, beta_end: forward process [Ho: T = 1000, linear
        betas from 1e-4 to 0.02].
    learning_rate: Adam [Ho: 2e-4].
    ema_decay: EMA of the weights used for sampling [Ho: 0.9999].
    label_dropout: probability of training on the "no class" token [CFG: 0.1 and 0.2 tried].
    sampler, sampling_steps, eta, guidance_scale: defaults of ``sample`` (see DiffusionSamplingConfig)
        [Ho: ancestral sampling over all T steps]; guidance_scale 1 means no guidance [CFG's w = s - 1].
    """

    channels: tuple[int, ...] = (128, 256, 256, 256)
    attention_levels: tuple[bool, ...] = (False, True, False, False)
    num_res_blocks: int = 2
    num_head_channels: int = 64
    norm_num_groups: int = 32
    num_train_timesteps: int = 1000
    beta_schedule: str = "linear_beta"
    beta_start: float = 1e-4
    beta_end: float = 0.02
    learning_rate: float = 2e-4
    ema_decay: float = 0.9999
    label_dropout: float = 0.1
    sampler: str = "ddpm"
    sampling_steps: int = 50
    eta: float = 0.0
    guidance_scale: float = 1.0

    def __post_init__(self) -> None:
        check_diffusion_config(self, "ddpm")

    def schedule(self) -> NoiseSchedule:
        # Pixels live in [-1, 1], so clipping the predicted x_0 there is correct [Ho].
        return NoiseSchedule(self.num_train_timesteps, self.beta_schedule, self.beta_start, self.beta_end, True)

    def sampling(self) -> DiffusionSamplingConfig:
        return DiffusionSamplingConfig(self.sampler, self.sampling_steps, self.eta, self.guidance_scale)


class ClassEmbeddingUNet(nn.Module):
    """DiffusionModelUNet whose class embedding is added to the time embedding.

    forward(x_t float [B,C,H,W], timesteps int64 [B], labels int64 [B] in [0, num_classes]) -> epsilon [B,C,H,W];
    label ``num_classes`` is the "no class" token.
    """

    def __init__(self, config: DDPMConfig, *, num_classes: int, image_channels: int) -> None:
        super().__init__()
        self.unet = diffusion_unet(config, image_channels, num_class_embeds=num_classes + 1)

    def forward(self, x: torch.Tensor, timesteps: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.unet(x, timesteps=timesteps, class_labels=labels)


class ConditionalDDPM(DiffusionGenerator):
    """Class-conditional pixel DDPM (the ``"ddpm"`` registry entry); samples from the EMA weights.

    Weights are initialised from ``init_seed``, so two models built from one config are identical.
    """

    name = "ddpm"
    config_class = DDPMConfig

    def __init__(
        self,
        config: DDPMConfig,
        *,
        num_classes: int,
        image_shape: tuple[int, int, int],
        training: TrainingSettings | None = None,
        init_seed: int = 0,
    ) -> None:
        super().__init__(config, num_classes=num_classes, image_shape=image_shape, training=training)
        levels = len(config.channels) - 1
        check_divisible(
            self.image_shape, 2**levels, "ddpm image_size", f"the U-Net has {levels} downsampling levels (channels)"
        )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(init_seed)
            self.network = ClassEmbeddingUNet(config, num_classes=num_classes, image_channels=self.image_shape[0])
        self.ema = ExponentialMovingAverage(self.network, config.ema_decay)
        self.sampling = config.sampling()

    def parameter_count(self) -> int:
        return count_parameters(self.network)

    def fit(self, train: ImageSet, checkpoint_path: str | Path, *, seed: int = 0, progress: bool = True) -> Path:
        """Train for ``training.steps`` steps, resuming from ``checkpoint_path`` if it exists; return it."""
        check_training_set(train, self.num_classes, self.image_shape)
        self.train_noise_predictor(
            train,
            Path(checkpoint_path),
            to_x_start=lambda images: images * 2.0 - 1.0,
            seed=seed,
            progress=progress,
            metadata={**training_set_metadata(train), "parameter_count": self.parameter_count()},
        )
        return Path(checkpoint_path)

    @torch.no_grad()
    def sample(self, labels: torch.Tensor, seed: int = 0, **sampling_overrides: Any) -> torch.Tensor:
        """labels int64 [N] in [0, num_classes) -> images float32 [N, C, H, W] in [0, 1] from the EMA weights.

        sampling_overrides: sampler, sampling_steps, eta, guidance_scale (defaults: ``self.sampling``).
        Deterministic for a seed. ``sample_batches``' chunks, concatenated.
        """
        return join_batches(self.sample_batches(labels, seed, **sampling_overrides), self.image_shape)

    def sample_batches(
        self, labels: torch.Tensor, seed: int = 0, **sampling_overrides: Any
    ) -> Iterator[torch.Tensor]:
        """``sample``'s images in order, as chunks of SAMPLE_CHUNK (``medsyn.models.diffusion_sampling``; the
        last possibly fewer, none for N = 0), each denoised at its ``next()``. labels and sampling_overrides
        are validated when this is called."""
        chunks = self.denoise_batches(labels, seed, self.image_shape, sampling_overrides)
        return (((x_start + 1.0) / 2.0).clamp(0.0, 1.0) for x_start in chunks)
