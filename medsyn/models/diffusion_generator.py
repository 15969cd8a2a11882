"""What the pixel DDPM and the latent diffusion model share as generators.

Both configs hold the same diffusion fields: the layout of a MONAI ``DiffusionModelUNet`` (channels,
attention_levels, num_res_blocks, num_head_channels, norm_num_groups), the noise schedule
(num_train_timesteps, beta_schedule, beta_start, beta_end), the optimisation (learning_rate, ema_decay,
label_dropout) and the sampling defaults (sampler, sampling_steps, eta, guidance_scale).
``check_diffusion_config`` validates them (with ``store_as_tuples`` and ``check_positive_integers``, which
the LDM's autoencoder fields use too); ``diffusion_unet`` builds the U-Net they describe.

``DiffusionGenerator`` is the base class of both models: a class-conditional noise predictor ``network``
whose label ``num_classes`` is the "no class" token of classifier-free guidance, the EMA of its weights
that sampling uses, fitting with ``fit_noise_predictor`` (``medsyn.models.diffusion_training``) and
sampling with ``sample_chunks`` (``medsyn.models.diffusion_sampling``), streamed chunk by chunk. A subclass
says what x is: pixels in [-1, 1] or scaled latents.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from monai.networks.nets import DiffusionModelUNet
from torch import nn

from medsyn.data.image_set import ImageSet
from medsyn.models.base import RegisteredGenerator, check_sample_labels
from medsyn.models.diffusion_sampling import (
    DiffusionSamplingConfig,
    NoiseSchedule,
    build_scheduler,
    sample_chunks,
)
from medsyn.models.diffusion_training import fit_noise_predictor
from medsyn.training.ema import ExponentialMovingAverage

__all__ = [
    "DiffusionGenerator",
    "check_diffusion_config",
    "check_positive_integers",
    "diffusion_unet",
    "store_as_tuples",
]


def check_diffusion_config(config: Any, what: str) -> None:
    """Validate the diffusion fields of a DDPM or LDM config (``what``: its name in messages); normalises
    channels and attention_levels to tuples."""
    _check_unet_layout(config, what)
    _check_schedule(config, what)
    _check_optimisation(config, what)
    config.sampling()  # validates the sampling defaults


def store_as_tuples(config: Any, keys: tuple[str, ...], what: str) -> None:
    """Replace each field ``keys`` of the frozen dataclass ``config`` by a tuple of its entries; ValueError
    (naming ``what`` and the key) unless it is a non-empty list or tuple."""
    for key in keys:
        value = getattr(config, key)
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)) or len(value) == 0:
            raise ValueError(f"{what} {key} must be a non-empty list, got {value!r}")
        object.__setattr__(config, key, tuple(value))


def check_positive_integers(config: Any, keys: tuple[str, ...], what: str) -> None:
    """ValueError (naming ``what`` and the key) unless each field ``keys`` of ``config`` is an int >= 1."""
    for key in keys:
        value = getattr(config, key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{what} {key} must be a positive integer, got {value!r}")


def _check_unet_layout(config: Any, what: str) -> None:
    """Validate (and normalise to tuples) channels / attention_levels / num_res_blocks / heads / groups."""
    store_as_tuples(config, ("channels", "attention_levels"), what)
    if not all(isinstance(c, int) and not isinstance(c, bool) and c > 0 for c in config.channels):
        raise ValueError(f"{what} channels must be positive integers, got {config.channels!r}")
    if not all(isinstance(a, bool) for a in config.attention_levels):
        raise ValueError(f"{what} attention_levels must be true/false per level, got {config.attention_levels!r}")
    if len(config.attention_levels) != len(config.channels):
        raise ValueError(
            f"{what} attention_levels has {len(config.attention_levels)} entries but channels has "
            f"{len(config.channels)}; give one per level"
        )
    check_positive_integers(config, ("num_res_blocks", "num_head_channels", "norm_num_groups"), what)
    bad = [c for c in config.channels if c % config.norm_num_groups]
    if bad:
        raise ValueError(f"{what} norm_num_groups={config.norm_num_groups} must divide every channel count; not {bad}")
    # MONAI's U-Net always has self-attention in its middle block (at channels[-1]).
    attended = [c for c, a in zip(config.channels, config.attention_levels) if a] + [config.channels[-1]]
    bad = sorted({c for c in attended if c % config.num_head_channels})
    if bad:
        raise ValueError(
            f"{what} num_head_channels={config.num_head_channels} must divide the channels of attention levels "
            f"and of the last level; not {bad}"
        )


def _check_schedule(config: Any, what: str) -> None:
    """Validate num_train_timesteps, beta_start < beta_end, a MONAI beta_schedule, and sampling_steps <= T."""
    if not isinstance(config.num_train_timesteps, int) or config.num_train_timesteps < 2:
        raise ValueError(f"{what} num_train_timesteps must be an integer >= 2, got {config.num_train_timesteps!r}")
    if not 0 < config.beta_start < config.beta_end < 1:
        raise ValueError(
            f"{what} beta_start and beta_end must satisfy 0 < beta_start < beta_end < 1, "
            f"got {config.beta_start!r}, {config.beta_end!r}"
        )
    try:
        build_scheduler(
            NoiseSchedule(config.num_train_timesteps, config.beta_schedule, config.beta_start, config.beta_end, True)
        )
    except (ValueError, KeyError) as error:
        raise ValueError(f"{what} beta_schedule {config.beta_schedule!r} is not a MONAI noise schedule: {error}") from error
    if config.sampling_steps > config.num_train_timesteps:
        raise ValueError(
            f"{what} sampling_steps={config.sampling_steps} exceeds num_train_timesteps={config.num_train_timesteps}"
        )


def _check_optimisation(config: Any, what: str) -> None:
    """Validate learning_rate > 0 and ema_decay, label_dropout in [0, 1)."""
    if not isinstance(config.learning_rate, (int, float)) or not config.learning_rate > 0:
        raise ValueError(f"{what} learning_rate must be > 0, got {config.learning_rate!r}")
    if not isinstance(config.ema_decay, (int, float)) or not 0 <= config.ema_decay < 1:
        raise ValueError(f"{what} ema_decay must lie in [0, 1), got {config.ema_decay!r}")
    if not isinstance(config.label_dropout, (int, float)) or not 0 <= config.label_dropout < 1:
        raise ValueError(f"{what} label_dropout must lie in [0, 1), got {config.label_dropout!r}")


def diffusion_unet(config: Any, data_channels: int, **conditioning: Any) -> DiffusionModelUNet:
    """MONAI's 2-d ``DiffusionModelUNet`` with the layout of a DDPM or LDM config, from ``data_channels``
    channels to as many; conditioning: how the class enters (``num_class_embeds``, or ``with_conditioning``
    and ``cross_attention_dim``)."""
    return DiffusionModelUNet(
        spatial_dims=2,
        in_channels=data_channels,
        out_channels=data_channels,
        num_res_blocks=config.num_res_blocks,
        channels=config.channels,
        attention_levels=config.attention_levels,
        norm_num_groups=config.norm_num_groups,
        num_head_channels=config.num_head_channels,
        **conditioning,
    )


class DiffusionGenerator(RegisteredGenerator):
    """Base class of the pixel DDPM and the LDM: a noise predictor ``network`` (x_t, t, labels) -> epsilon,
    its EMA ``ema`` (what ``sample`` and ``sample_batches`` denoise with) and the ``sampling`` defaults of the
    reverse process.

    A subclass builds those three after ``RegisteredGenerator.__init__``; its config has the fields
    ``check_diffusion_config`` validates and a ``schedule()`` (the clipping of x_0 differs by model).
    """

    network: nn.Module
    ema: ExponentialMovingAverage
    sampling: DiffusionSamplingConfig

    @property
    def null_label(self) -> int:
        """The "no class" label of classifier-free guidance."""
        return self.num_classes

    def train_noise_predictor(
        self,
        train: ImageSet,
        checkpoint_path: Path,
        *,
        to_x_start: Callable[[torch.Tensor], torch.Tensor],
        seed: int,
        progress: bool,
        metadata: dict[str, Any],
        extra_stateful: Mapping[str, Any] | None = None,
    ) -> None:
        """``fit_noise_predictor`` of ``network`` with this model's config and training settings; keeps the
        trained network, its EMA, the loss history and the run's metadata."""
        self.network, self.ema, self.history, self.metadata = fit_noise_predictor(
            model_name=self.name,
            checkpoint_config=self.checkpoint_config(),
            network=self.network,
            to_x_start=to_x_start,
            schedule=self.config.schedule(),
            learning_rate=self.config.learning_rate,
            ema_decay=self.config.ema_decay,
            label_dropout=self.config.label_dropout,
            null_label=self.null_label,
            training=self.training,
            train=train,
            checkpoint_path=checkpoint_path,
            seed=seed,
            progress=progress,
            metadata=metadata,
            extra_stateful=extra_stateful,
        )

    def load_state(self, state: dict[str, Any]) -> None:
        """Load the network and its EMA."""
        self.network.load_state_dict(state["network"])
        self.ema.load_state_dict(state["ema"])

    def denoise_batches(
        self,
        labels: torch.Tensor,
        seed: int,
        shape: tuple[int, int, int],
        sampling_overrides: Mapping[str, Any],
    ) -> Iterator[torch.Tensor]:
        """x_0 float32 [<= SAMPLE_CHUNK, *shape] chunk by chunk (``sample_chunks``) for ``labels``, from the EMA
        noise predictor, with ``self.sampling`` updated by ``sampling_overrides``. Deterministic for a seed.

        labels (validated as ``sample``'s) and the overrides are checked when this is called; each chunk is
        denoised at its ``next()``.
        """
        labels = check_sample_labels(labels, self.num_classes)
        sampling = self.sampling.with_overrides(sampling_overrides, what=f"{self.name} sampling")
        return sample_chunks(
            self.ema.module.eval(),
            labels,
            shape=shape,
            schedule=self.config.schedule(),
            sampling=sampling,
            null_label=self.null_label,
            seed=seed,
        )
