"""Class-conditional pixel DDPM (paper 001 §3; Ho et al. 2020) on MONAI's ``DiffusionModelUNet``.

The U-Net predicts the noise added to an image in [-1, 1] at timestep t, conditioned on the class through
a learned class embedding added to the time embedding (``num_class_embeds = num_classes + 1``: the extra
index is the "no class" token of classifier-free guidance, used for a fraction ``label_dropout`` of the
training labels). Training minimises the per-sample noise MSE (``noise_prediction_loss``); an exponential
moving average of the weights is kept and used for sampling. Sampling runs DDPM ancestral steps (all T)
or DDIM steps (configurable count and eta), with optional guidance (``reverse_diffusion``).

Paper 001 does not print its DDPM's architecture or optimiser, so the defaults are those of the DDPM
paper's 32x32 model [Ho]; classifier-free guidance follows [CFG]. Under DP-SGD (``training.dp``) the
whole U-Net is private (paper 001 §3.1: "in VAE and DDPM, the entire architecture is typically affected
by noise disturbance"); it already uses GroupNorm, so Opacus' ModuleValidator accepts it unchanged.

[Ho] Ho, Jain, Abbeel 2020, Denoising diffusion probabilistic models, §4 and App. B (CIFAR-10 model).
[CFG] Ho & Salimans 2022, Classifier-free diffusion guidance, §3-4.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from monai.networks.nets import DiffusionModelUNet
from torch import nn

from medsyn.data.image_set import ImageSet
from medsyn.models.base import (
    GeneratorConfiguration,
    check_generator_arguments,
    check_sample_labels,
    check_training_set,
)
from medsyn.models.diffusion_sampling import (
    SAMPLERS,
    NoiseSchedule,
    build_scheduler,
    noise_prediction_loss,
    reverse_diffusion,
)
from medsyn.training.device import resolve_device
from medsyn.training.distributed import unwrap
from medsyn.training.dp import (
    make_module_private_compatible,
    per_sample_mean,
)
from medsyn.training.ema import ExponentialMovingAverage
from medsyn.training.loop import TrainingRun, run_training
from medsyn.training.optimisation_setup import prepare_optimisation
from medsyn.training.settings import (
    TrainingSettings,
    config_from_mapping,
)

__all__ = [
    "DDPMConfig",
    "DiffusionSamplingConfig",
    "ClassEmbeddingUNet",
    "ConditionalDDPM",
    "fit_noise_predictor",
    "check_unet_layout",
]

SAMPLE_CHUNK = 256  # images denoised together in ``sample``; part of what a seed determines


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
        check_unet_layout(self, "ddpm")
        check_schedule(self, "ddpm")
        check_optimisation(self, "ddpm")
        self.sampling()  # validates the sampling defaults

    def schedule(self) -> NoiseSchedule:
        # Pixels live in [-1, 1], so clipping the predicted x_0 there is correct [Ho].
        return NoiseSchedule(self.num_train_timesteps, self.beta_schedule, self.beta_start, self.beta_end, True)

    def sampling(self) -> DiffusionSamplingConfig:
        return DiffusionSamplingConfig(self.sampler, self.sampling_steps, self.eta, self.guidance_scale)


def check_unet_layout(config: Any, what: str) -> None:
    """Validate (and normalise to tuples) channels / attention_levels / num_res_blocks / heads / groups."""
    for key in ("channels", "attention_levels"):
        value = getattr(config, key)
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)) or len(value) == 0:
            raise ValueError(f"{what} {key} must be a non-empty list, got {value!r}")
        object.__setattr__(config, key, tuple(value))
    if not all(isinstance(c, int) and not isinstance(c, bool) and c > 0 for c in config.channels):
        raise ValueError(f"{what} channels must be positive integers, got {config.channels!r}")
    if not all(isinstance(a, bool) for a in config.attention_levels):
        raise ValueError(f"{what} attention_levels must be true/false per level, got {config.attention_levels!r}")
    if len(config.attention_levels) != len(config.channels):
        raise ValueError(
            f"{what} attention_levels has {len(config.attention_levels)} entries but channels has "
            f"{len(config.channels)}; give one per level"
        )
    for key in ("num_res_blocks", "num_head_channels", "norm_num_groups"):
        value = getattr(config, key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{what} {key} must be a positive integer, got {value!r}")
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


def check_schedule(config: Any, what: str) -> None:
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


def check_optimisation(config: Any, what: str) -> None:
    if not isinstance(config.learning_rate, (int, float)) or not config.learning_rate > 0:
        raise ValueError(f"{what} learning_rate must be > 0, got {config.learning_rate!r}")
    if not isinstance(config.ema_decay, (int, float)) or not 0 <= config.ema_decay < 1:
        raise ValueError(f"{what} ema_decay must lie in [0, 1), got {config.ema_decay!r}")
    if not isinstance(config.label_dropout, (int, float)) or not 0 <= config.label_dropout < 1:
        raise ValueError(f"{what} label_dropout must lie in [0, 1), got {config.label_dropout!r}")


def check_divisible(image_shape: tuple[int, int, int], factor: int, what: str, why: str) -> None:
    """Raise ValueError unless H and W are divisible by ``factor``."""
    _, height, width = image_shape
    if height % factor or width % factor:
        raise ValueError(f"{what}: {why}, so image height and width must be divisible by {factor}; got {height}x{width}")


class ClassEmbeddingUNet(nn.Module):
    """DiffusionModelUNet whose class embedding is added to the time embedding.

    forward(x_t float [B,C,H,W], timesteps int64 [B], labels int64 [B] in [0, num_classes]) -> epsilon [B,C,H,W];
    label ``num_classes`` is the "no class" token.
    """

    def __init__(self, config: DDPMConfig, *, num_classes: int, image_channels: int) -> None:
        super().__init__()
        self.unet = DiffusionModelUNet(
            spatial_dims=2,
            in_channels=image_channels,
            out_channels=image_channels,
            num_res_blocks=config.num_res_blocks,
            channels=config.channels,
            attention_levels=config.attention_levels,
            norm_num_groups=config.norm_num_groups,
            num_head_channels=config.num_head_channels,
            num_class_embeds=num_classes + 1,
        )

    def forward(self, x: torch.Tensor, timesteps: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.unet(x, timesteps=timesteps, class_labels=labels)


def fit_noise_predictor(
    *,
    model_name: str,
    checkpoint_config: dict[str, Any],
    network: nn.Module,
    to_x_start: Callable[[torch.Tensor], torch.Tensor],
    schedule: NoiseSchedule,
    learning_rate: float,
    ema_decay: float,
    label_dropout: float,
    null_label: int,
    training: TrainingSettings,
    train: ImageSet,
    checkpoint_path: Path,
    seed: int,
    progress: bool,
    metadata: dict[str, Any],
    extra_stateful: Mapping[str, Any] | None = None,
) -> tuple[nn.Module, ExponentialMovingAverage, list[dict[str, float]], dict[str, Any]]:
    """Train ``network`` (x_t, t, labels) -> epsilon on ``to_x_start(images)`` with the diffusion loss.

    Shared by the pixel DDPM (to_x_start: [0,1] -> [-1,1]) and the LDM's second stage (to_x_start: encode
    to scaled latents). Adam at ``learning_rate``; EMA of the weights; under ``training.dp`` the whole
    network is trained with DP-SGD (Poisson batches, per-sample clipping, RDP epsilon at
    delta = 1 / len(train) unless set). Resumes from ``checkpoint_path``. extra_stateful: more objects to
    checkpoint (e.g. the LDM's frozen autoencoder, already on ``training.device``).
    Trains on ``training.device``; the returned network and EMA are back on the CPU.
    Returns (trained plain network, EMA, loss history, metadata incl. "dp" with "epsilon").
    """
    metadata = dict(metadata)
    metadata["batchnorm_replaced_by_groupnorm"] = False
    device = resolve_device(training.device)
    network = network.to(device)
    if training.dp is not None:
        # The MONAI U-Net has GroupNorm only; fix() is a no-op then, and validation names any layer
        # Opacus cannot handle.
        network, replaced = make_module_private_compatible(network)
        metadata["batchnorm_replaced_by_groupnorm"] = replaced
    ema = ExponentialMovingAverage(network, ema_decay)
    optimizer = torch.optim.Adam(network.parameters(), lr=learning_rate)
    stateful: dict[str, Any] = {**dict(extra_stateful or {}), "network": network, "optimizer": optimizer, "ema": ema}
    scheduler = build_scheduler(schedule, "ddpm")
    setup = prepare_optimisation(network, optimizer, training, num_train=len(train))
    trained, optimizer, metadata_fn = setup.module, setup.optimizer, setup.metadata_fn
    stateful.update(setup.stateful)
    metadata.update(setup.metadata)

    def step(images: torch.Tensor, labels: torch.Tensor, step_index: int) -> dict[str, float]:
        trained.train()
        optimizer.zero_grad(set_to_none=True)
        if len(images) == 0:
            # An empty Poisson batch (DP-SGD only): MONAI's attention cannot reshape a batch of 0, so give
            # Opacus the empty per-sample gradients directly; the step then adds pure noise, as DP-SGD must.
            for parameter in network.parameters():
                if parameter.requires_grad:
                    parameter.grad_sample = parameter.new_zeros((0, *parameter.shape))
            optimizer.step()
            ema.update(network)
            return {"loss": 0.0}
        losses = noise_prediction_loss(
            trained, to_x_start(images), labels, scheduler, null_label=null_label, label_dropout=label_dropout
        )
        loss = per_sample_mean(losses)
        loss.backward()
        optimizer.step()
        ema.update(network)
        return {"loss": float(loss.detach())}

    run = TrainingRun(
        model_name=model_name,
        config=checkpoint_config,
        stateful=stateful,
        checkpoint_path=Path(checkpoint_path),
        steps=training.steps,
        batch_size=training.batch_size,
        seed=seed,
        checkpoint_every=training.checkpoint_every,
        metadata=metadata,
        progress=progress,
        poisson_sampling=training.dp is not None,
        metadata_fn=metadata_fn,
        device=device,
    )
    history = run_training(run, train, step)
    final_metadata = {**metadata, **(metadata_fn() if metadata_fn else {})}
    ema.module.cpu()  # sampling and checkpoints are device-independent
    return unwrap(trained).cpu(), ema, history, final_metadata


def sample_in_chunks(
    predict_noise: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
    labels: torch.Tensor,
    *,
    shape: tuple[int, int, int],
    schedule: NoiseSchedule,
    sampling: DiffusionSamplingConfig,
    null_label: int,
    seed: int,
) -> torch.Tensor:
    """``reverse_diffusion`` over chunks of SAMPLE_CHUNK labels, chunk i seeded with (seed, i)."""
    outputs = []
    for index, start in enumerate(range(0, len(labels), SAMPLE_CHUNK)):
        outputs.append(
            reverse_diffusion(
                predict_noise,
                labels[start : start + SAMPLE_CHUNK],
                shape=shape,
                schedule=schedule,
                null_label=null_label,
                seed=int(seed) * 1_000_003 + index,
                sampler=sampling.sampler,
                steps=None if sampling.sampler == "ddpm" else sampling.sampling_steps,
                eta=sampling.eta,
                guidance_scale=sampling.guidance_scale,
            )
        )
    if not outputs:
        return torch.zeros(0, *shape)
    return torch.cat(outputs)


class ConditionalDDPM(GeneratorConfiguration):
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
        self.image_shape = check_generator_arguments(config, DDPMConfig, num_classes, image_shape)
        self.config = config
        self.num_classes = num_classes
        self.training = training if training is not None else TrainingSettings()
        levels = len(config.channels) - 1
        check_divisible(
            self.image_shape, 2**levels, "ddpm image_size", f"the U-Net has {levels} downsampling levels (channels)"
        )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(init_seed)
            self.network = ClassEmbeddingUNet(config, num_classes=num_classes, image_channels=self.image_shape[0])
        self.ema = ExponentialMovingAverage(self.network, config.ema_decay)
        self.sampling = config.sampling()
        self.metadata: dict[str, Any] = {}
        self.history: list[dict[str, float]] = []

    @property
    def null_label(self) -> int:
        return self.num_classes

    def parameter_count(self) -> int:
        return sum(parameter.numel() for parameter in self.network.parameters())

    def fit(self, train: ImageSet, checkpoint_path: str | Path, *, seed: int = 0, progress: bool = True) -> Path:
        """Train for ``training.steps`` steps, resuming from ``checkpoint_path`` if it exists; return it."""
        check_training_set(train, self.num_classes, self.image_shape)
        self.network, self.ema, self.history, self.metadata = fit_noise_predictor(
            model_name=self.name,
            checkpoint_config=self.checkpoint_config(),
            network=self.network,
            to_x_start=lambda images: images * 2.0 - 1.0,
            schedule=self.config.schedule(),
            learning_rate=self.config.learning_rate,
            ema_decay=self.config.ema_decay,
            label_dropout=self.config.label_dropout,
            null_label=self.null_label,
            training=self.training,
            train=train,
            checkpoint_path=Path(checkpoint_path),
            seed=seed,
            progress=progress,
            metadata={
                "class_names": list(train.class_names),
                "num_train": len(train),
                "parameter_count": self.parameter_count(),
            },
        )
        return Path(checkpoint_path)

    def load_weights(self, payload: dict) -> None:
        """Load network and EMA weights from a checkpoint payload made by a DDPM with this exact config."""
        if payload.get("model") != self.name:
            raise ValueError(f"checkpoint holds a {payload.get('model')!r} model, not a {self.name!r} model")
        if payload.get("config") != self.checkpoint_config():
            raise ValueError("checkpoint was made with a different ddpm config; rebuild with load_generator")
        self.network.load_state_dict(payload["state"]["network"])
        self.ema.load_state_dict(payload["state"]["ema"])
        self.metadata = dict(payload.get("metadata", {}))
        self.history = list(payload.get("history", []))

    @torch.no_grad()
    def sample(self, labels: torch.Tensor, seed: int = 0, **sampling_overrides: Any) -> torch.Tensor:
        """labels int64 [N] in [0, num_classes) -> images float32 [N, C, H, W] in [0, 1] from the EMA weights.

        sampling_overrides: sampler, sampling_steps, eta, guidance_scale (defaults: ``self.sampling``).
        Deterministic for a seed.
        """
        labels = check_sample_labels(labels, self.num_classes)
        sampling = config_from_mapping(
            DiffusionSamplingConfig, {**asdict(self.sampling), **sampling_overrides}, what="ddpm sampling"
        )
        network = self.ema.module.eval()
        x_start = sample_in_chunks(
            network,
            labels,
            shape=self.image_shape,
            schedule=self.config.schedule(),
            sampling=sampling,
            null_label=self.null_label,
            seed=seed,
        )
        return ((x_start + 1.0) / 2.0).clamp(0.0, 1.0)
