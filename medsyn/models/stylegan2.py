"""Class-conditional StyleGAN2 (paper 000 §4.2.2; Karras et al. 2020) behind medsyn's generator interface.

``StyleGAN2Config`` holds every hyper-parameter; its defaults are the paper's values (cited field by field).
``ConditionalStyleGAN2`` trains G and D with the non-saturating logistic loss, lazy R1 on D, lazy
path-length regularisation and style mixing on G, and an exponential moving average of G (``G_ema``)
that ``sample`` uses. Under DP-SGD only the discriminator is private (paper 001 §3.1): it is the only
network that reads real images, so G inherits the guarantee by post-processing.

The networks live in ``medsyn.models.stylegan2_layers``. Images are in [-1, 1] inside the model and in
[0, 1] at the interface.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from medsyn.data.image_set import ImageSet
from medsyn.models.base import (
    RegisteredGenerator,
    check_sample_labels,
    check_training_set,
    count_parameters,
    join_batches,
    run_generator_training,
    training_set_metadata,
)
from medsyn.models.stylegan2_layers import Discriminator, MappingNetwork, SynthesisNetwork
from medsyn.training.checkpoint import load_checkpoint
from medsyn.training.device import resolve_device
from medsyn.training.distributed import is_distributed, rank_and_world_size
from medsyn.training.dp import (
    default_delta,
    discriminator_hooks_disabled,
    make_private,
    per_sample_mean,
)
from medsyn.training.dp import epsilon as dp_epsilon
from medsyn.training.ema import ExponentialMovingAverage
from medsyn.training.settings import TrainingSettings, config_from_mapping

__all__ = [
    "StyleGAN2Config",
    "STYLEGAN2_PRESETS",
    "StyleGAN2Generator",
    "ConditionalStyleGAN2",
    "check_image_shape",
]


@dataclass(frozen=True)
class StyleGAN2Config:
    """Model hyper-parameters of the conditional StyleGAN2; defaults are the paper's.

    Sources: [000] paper 000 §4.2.2 (Salme et al.); [SG2] Karras et al. 2020, StyleGAN2 config-f;
    [ADA] Karras et al. 2020b, StyleGAN2-ADA (conditioning, 'paper256' channel base, EMA).
    Training length, batch size (32 [000]) and DP-SGD are ``medsyn.training.settings.TrainingSettings``;
    [000] trained 100 epochs, i.e. steps = 100 * N / 32.
    """

    # Architecture.
    z_dim: int = 512  # [000]
    w_dim: int = 512  # [000]
    embed_dim: int = 512  # class embedding joined to z [ADA]
    mapping_layers: int = 8  # [000]
    mapping_lr_multiplier: float = 0.01  # [SG2]
    channel_base: int = 16384  # [ADA] paper256: ~49M parameters (G + D) at 256x256; [000]: "~50 million"
    channel_max: int = 512  # [SG2]
    mbstd_group_size: int = 4  # [SG2]; 0 disables minibatch standard deviation (always off under DP)
    # Optimisation (G and D alike).
    learning_rate: float = 0.0025  # [000]
    betas: tuple[float, float] = (0.0, 0.99)  # [000]
    eps: float = 1e-8  # [000]
    # Regularisation.
    style_mixing_prob: float = 0.9  # [SG2]
    r1_gamma: float = 10.0  # [SG2] config-f; 0 disables R1 (always off under DP)
    r1_interval: int = 16  # [SG2] lazy regularisation
    pl_weight: float = 2.0  # [SG2]; 0 disables path-length regularisation
    pl_interval: int = 4  # [SG2]
    pl_decay: float = 0.01  # [SG2]
    pl_batch_shrink: int = 2  # [ADA]
    ema_half_life_images: int = 10_000  # [ADA] ema_kimg = 10 at batch 32
    # Sampling.
    truncation_psi: float = 1.0  # 1: no truncation; < 1 pulls w towards its class's mean w

    def __post_init__(self) -> None:
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        positive = ("z_dim", "w_dim", "embed_dim", "mapping_layers", "channel_base", "channel_max",
                    "r1_interval", "pl_interval", "pl_batch_shrink", "ema_half_life_images")  # fmt: skip
        for key in positive:
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"stylegan2 config key {key} must be a positive integer, got {value!r}")
        for key in ("learning_rate", "eps", "mapping_lr_multiplier", "truncation_psi"):
            if not getattr(self, key) > 0:
                raise ValueError(f"stylegan2 config key {key} must be > 0, got {getattr(self, key)!r}")
        for key in ("r1_gamma", "pl_weight", "mbstd_group_size"):
            if not getattr(self, key) >= 0:
                raise ValueError(f"stylegan2 config key {key} must be >= 0, got {getattr(self, key)!r}")
        for key in ("style_mixing_prob", "pl_decay"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ValueError(f"stylegan2 config key {key} must lie in [0, 1], got {getattr(self, key)!r}")
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f"stylegan2 config key betas must be two numbers in [0, 1), got {self.betas}")


# Named starting points for ``from_config(..., {"preset": name, **overrides})``; "paper" is the dataclass
# defaults. "tiny" trains recognisable 32x32 digits in a few hundred CPU steps (channels 32 -> 8).
STYLEGAN2_PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    "tiny": {
        "z_dim": 64,
        "w_dim": 64,
        "embed_dim": 64,
        "mapping_layers": 2,
        "channel_base": 256,
        "channel_max": 32,
        "r1_gamma": 0.1,  # StyleGAN2-ADA's heuristic 0.0002 * res^2 / batch is ~0.01-0.1 at 32x32
        "ema_half_life_images": 1000,  # runs are short: average over the last ~30 steps, not ~300
    },
}


def check_image_shape(image_shape: tuple[int, int, int]) -> tuple[int, int, int]:
    """(C, H, W) with C in {1, 3} and H = W a power of two >= 8, or ValueError naming image_shape."""
    shape = tuple(int(size) for size in image_shape)
    if len(shape) != 3:
        raise ValueError(f"image_shape must be (C, H, W), got {image_shape!r}")
    channels, height, width = shape
    if channels not in (1, 3):
        raise ValueError(f"image_shape: StyleGAN2 needs 1 or 3 image channels, got {channels}")
    if height != width or height < 8 or height & (height - 1):
        raise ValueError(
            f"image_shape: StyleGAN2 needs square images of a power-of-two size >= 8, got {height}x{width}"
        )
    return shape  # type: ignore[return-value]


class StyleGAN2Generator(nn.Module):
    """Mapping + synthesis. ``path_length_mean`` is the running mean of the path-length regulariser."""

    def __init__(
        self, config: StyleGAN2Config, num_classes: int, image_channels: int, image_size: int
    ) -> None:
        super().__init__()
        self.mapping = MappingNetwork(
            config.z_dim, config.w_dim, num_classes, config.embed_dim,
            config.mapping_layers, config.mapping_lr_multiplier,
        )  # fmt: skip
        self.synthesis = SynthesisNetwork(
            image_size, image_channels, config.w_dim, config.channel_base, config.channel_max
        )
        self.num_ws = self.synthesis.num_ws
        self.register_buffer("path_length_mean", torch.zeros([]))

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """z [B, z_dim], labels int64 [B] -> images [B, C, R, R] (about [-1, 1]); no style mixing."""
        return self.synthesis(self.mapping(z, labels)[:, None].repeat(1, self.num_ws, 1))


class ConditionalStyleGAN2(RegisteredGenerator):
    """Class-conditional StyleGAN2 implementing ``medsyn.models.base.ConditionalGenerator`` and the
    registry contract (``medsyn.models.registry``).

    Weights are initialised from ``init_seed`` (two models built alike are identical). Under DP
    (``training.dp``) the discriminator is built without minibatch standard deviation.
    """

    name = "stylegan2"
    config_class = StyleGAN2Config

    def __init__(
        self,
        config: StyleGAN2Config | None = None,
        *,
        num_classes: int,
        image_shape: tuple[int, int, int],
        training: TrainingSettings | None = None,
        init_seed: int = 0,
        device: str | torch.device | None = None,
    ) -> None:
        config = config if config is not None else StyleGAN2Config()
        super().__init__(config, num_classes=num_classes, image_shape=image_shape, training=training)
        self.image_shape = check_image_shape(image_shape)
        # None: the training settings' device, as every generator uses it ("cpu", "cuda", "auto", ...)
        self.device = resolve_device(self.training.device if device is None else device)
        channels, size = self.image_shape[0], self.image_shape[1]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(init_seed)
            self.G = StyleGAN2Generator(self.config, num_classes, channels, size).to(self.device)
            self.D = Discriminator(
                size, channels, num_classes, self.config.channel_base, self.config.channel_max,
                0 if self.private else self.config.mbstd_group_size,
            ).to(self.device)  # fmt: skip
        batch = self.training.batch_size
        self.ema = ExponentialMovingAverage(self.G, decay=0.5 ** (batch / self.config.ema_half_life_images))

    @property
    def G_ema(self) -> StyleGAN2Generator:
        """The moving average of G that ``sample`` uses."""
        return self.ema.module

    @property
    def private(self) -> bool:
        return self.training.dp is not None

    @classmethod
    def parse_model_config(cls, config: Mapping[str, Any] | None) -> StyleGAN2Config:
        """StyleGAN2Config from overrides that may name a ``preset`` (a key of ``STYLEGAN2_PRESETS``, default
        "paper"); the other keys override the preset's values."""
        config = dict(config or {})
        preset = config.pop("preset", "paper")
        if preset not in STYLEGAN2_PRESETS:
            known = sorted(STYLEGAN2_PRESETS)
            raise ValueError(f"model_config.preset: unknown stylegan2 preset {preset!r}; known presets: {known}")
        return config_from_mapping(StyleGAN2Config, {**STYLEGAN2_PRESETS[preset], **config}, what="model_config")

    @classmethod
    def from_config(
        cls,
        config: Mapping[str, Any] | StyleGAN2Config | None,
        *,
        num_classes: int,
        image_shape: tuple[int, int, int],
        training: Mapping[str, Any] | TrainingSettings | None = None,
        device: str | torch.device | None = None,
    ) -> ConditionalStyleGAN2:
        """Build from plain mappings (bundle YAML); unknown keys raise ValueError naming them.
        device None: ``training.device`` (the bundles' ``device`` key).

        config may hold ``preset`` (a key of ``STYLEGAN2_PRESETS``); its other keys override the preset.
        """
        if not isinstance(config, StyleGAN2Config):
            config = cls.parse_model_config(config)
        if not isinstance(training, TrainingSettings):
            training = config_from_mapping(TrainingSettings, training, what="training")
        return cls(config, num_classes=num_classes, image_shape=image_shape, training=training, device=device)

    # ------------------------------------------------------------------ checkpoints
    @classmethod
    def from_checkpoint(
        cls, path: str | Path, *, device: str | torch.device = "cpu"
    ) -> ConditionalStyleGAN2:
        """The trained model stored in ``path`` (a checkpoint of another model raises ValueError)."""
        return cls.from_checkpoint_payload(load_checkpoint(path, model=cls.name), device=device)

    def config_mismatch_message(self, checkpoint_config: Any) -> str:
        """Names the config keys that differ (a StyleGAN2 config has many, and presets hide some)."""
        differing = _differing_keys(self.checkpoint_config(), checkpoint_config or {})
        return f"checkpoint was made with a different stylegan2 config; differing keys: {differing}"

    def load_state(self, state: dict[str, Any]) -> None:
        """Load G, D and G_ema."""
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        self.ema.load_state_dict(state["G_ema"])

    def load_checkpoint(self, path: str | Path) -> None:
        """Load weights from ``path``; refuses a checkpoint of another model or config."""
        try:
            self.load_weights(load_checkpoint(path, model=self.name))
        except ValueError as error:
            raise ValueError(f"checkpoint {path}: {error}") from error

    def parameter_count(self) -> int:
        """Trainable parameters of G and D (G_ema is a copy of G and not counted)."""
        return count_parameters(self.G, self.D)

    # ------------------------------------------------------------------ sampling
    @torch.no_grad()
    def sample(
        self,
        labels: torch.Tensor,
        seed: int = 0,
        *,
        truncation_psi: float | None = None,
        batch_size: int = 64,
    ) -> torch.Tensor:
        """labels int64 [N] in [0, num_classes) -> images float32 [N, C, H, W] in [0, 1], from G_ema.

        Deterministic for a seed (z from a forked, seeded RNG; constant noise inputs), whatever batch_size.
        truncation_psi < 1 pulls each w towards its class's mean w (estimated from 1024 draws).
        ``sample_batches``' chunks, concatenated.
        """
        batches = self.sample_batches(labels, seed, truncation_psi=truncation_psi, batch_size=batch_size)
        return join_batches(batches, self.image_shape)

    @torch.no_grad()
    def sample_batches(
        self,
        labels: torch.Tensor,
        seed: int = 0,
        *,
        truncation_psi: float | None = None,
        batch_size: int = 64,
    ) -> Iterator[torch.Tensor]:
        """``sample``'s images in order, as CPU chunks of ``batch_size`` (the last possibly fewer; none for
        N = 0), synthesised one chunk per ``next()``.

        labels, truncation_psi and batch_size are validated when this is called, and then all N latents
        z [N, z_dim] (and, for truncation_psi != 1, the class mean w) are drawn, so the global RNG is left
        as it was and a chunk depends only on (seed, its positions).
        """
        labels = check_sample_labels(labels, self.num_classes)
        psi = self.config.truncation_psi if truncation_psi is None else float(truncation_psi)
        if not psi > 0:
            raise ValueError(f"truncation_psi must be > 0, got {psi}")
        try:
            batch_size = operator.index(batch_size)
        except TypeError:
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}") from None
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.G_ema.eval()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            # All z first and constant noise inputs: an image depends on (seed, position), not on batch_size,
            # and truncation moves the very images psi = 1 gives.
            z_all = torch.randn(len(labels), self.config.z_dim)
            class_w_mean = self._class_w_mean() if psi != 1.0 else None
        return self._synthesised_batches(labels, z_all, class_w_mean, psi, batch_size)

    @torch.no_grad()
    def _synthesised_batches(
        self,
        labels: torch.Tensor,
        z_all: torch.Tensor,
        class_w_mean: torch.Tensor | None,
        psi: float,
        batch_size: int,
    ) -> Iterator[torch.Tensor]:
        for start in range(0, len(labels), batch_size):
            batch_labels = labels[start : start + batch_size].to(self.device)
            w = self.G_ema.mapping(z_all[start : start + batch_size].to(self.device), batch_labels)
            if class_w_mean is not None:
                w = torch.lerp(class_w_mean[batch_labels], w, psi)
            ws = w[:, None].repeat(1, self.G_ema.num_ws, 1)
            images_in_minus1_1 = self.G_ema.synthesis(ws, noise_mode="const").clamp(-1, 1)
            yield ((images_in_minus1_1 + 1) / 2).float().cpu()

    def _class_w_mean(self, draws: int = 1024) -> torch.Tensor:
        """Mean w of each class, [num_classes, w_dim]."""
        z = torch.randn(draws, self.config.z_dim).to(self.device)
        means = [
            self.G_ema.mapping(z, torch.full((draws,), c, dtype=torch.int64, device=self.device)).mean(0)
            for c in range(self.num_classes)
        ]
        return torch.stack(means)

    # ------------------------------------------------------------------ training
    def fit(
        self, train: ImageSet, checkpoint_path: str | Path, *, seed: int = 0, progress: bool = True
    ) -> Path:
        """Train on ``train`` for ``training.steps`` steps (resuming from ``checkpoint_path`` if it exists).

        Returns the checkpoint path. Under DP the epsilon spent (delta = 1/N unless set) is in the
        checkpoint's metadata and in ``metadata``.
        """
        check_training_set(train, self.num_classes, self.image_shape)
        trainer = _Trainer(self, num_train=len(train))
        checkpoint_path = Path(checkpoint_path)
        try:
            # Batches stay on the CPU: the trainer moves them to self.device.
            self.history, self.metadata = run_generator_training(
                trainer.step,
                train,
                model_name=self.name,
                checkpoint_config=self.checkpoint_config(),
                checkpoint_path=checkpoint_path,
                stateful=trainer.stateful(),
                metadata={
                    **training_set_metadata(train),
                    "parameter_count": self.parameter_count(),
                    **trainer.metadata(),
                },
                metadata_fn=trainer.privacy_metadata,
                training=self.training,
                seed=seed,
                progress=progress,
            )
        finally:
            trainer.close()
        return checkpoint_path


def _differing_keys(mine: Mapping[str, Any], theirs: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Dotted names of the (nested) keys whose values differ, e.g. ['model_config.w_dim']."""
    differing = []
    for key in sorted(set(mine) | set(theirs)):
        a, b = mine.get(key, "<missing>"), theirs.get(key, "<missing>")
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            differing += _differing_keys(a, b, f"{prefix}{key}.")
        elif a != b:
            differing.append(f"{prefix}{key}")
    return differing


class _Trainer:
    """One StyleGAN2 training step (StyleGAN2-ADA's phase order: G main, G path length, D main, D R1).

    Under DP-SGD (paper 001 §3.1) only D is private: D is wrapped by Opacus (per-sample gradients, clipping,
    noise, RDP accountant), batches are Poisson-sampled, and D's per-sample loss is the pair
    (real_i, fake_i) so each real image's influence is clipped. Minibatch std (mixes samples) and R1
    (double backward, unsupported by Opacus' per-sample hooks) are off.
    """

    def __init__(self, model: ConditionalStyleGAN2, num_train: int) -> None:
        self.model = model
        self.config = config = model.config
        self.device = model.device
        self.G = model.G
        self.D: nn.Module = model.D
        self.dp = model.training.dp
        self.num_train = num_train
        self.use_r1 = config.r1_gamma > 0 and self.dp is None
        self.use_pl = config.pl_weight > 0
        self.opt_G = self._adam(self.G, config.pl_interval if self.use_pl else None)
        self.accountant = None
        if self.dp is None:
            self.opt_D = self._adam(self.D, config.r1_interval if self.use_r1 else None)
        else:
            # make_private runs Opacus' ModuleValidator on D (D has no BatchNorm: nothing to replace).
            batch = self.expected_batch_size = min(model.training.batch_size, num_train)
            self.D, self.opt_D, self.accountant = make_private(
                model.D,
                self._adam(model.D, None),
                noise_multiplier=self.dp.noise_multiplier,
                max_grad_norm=self.dp.max_grad_norm,
                sample_rate=batch / num_train,
                expected_batch_size=batch,
            )
            self.delta = self.dp.delta if self.dp.delta is not None else default_delta(num_train)

    def close(self) -> None:
        """Detach Opacus' per-sample-gradient hooks from D, so the model is plain again after training."""
        if self.dp is not None:
            self.D.to_standard_module()

    def _adam(self, module: nn.Module, lazy_interval: int | None) -> torch.optim.Adam:
        # Lazy regularisation runs every k steps; StyleGAN2 (Appendix C) rescales lr and betas by k/(k+1)
        # so that the optimiser's effective step size matches non-lazy training.
        ratio = lazy_interval / (lazy_interval + 1) if lazy_interval else 1.0
        beta1, beta2 = self.config.betas
        return torch.optim.Adam(
            module.parameters(),
            lr=self.config.learning_rate * ratio,
            betas=(beta1**ratio, beta2**ratio),
            eps=self.config.eps,
        )

    def stateful(self) -> dict:
        # The plain D (not Opacus' wrapper) is checkpointed, so weights load into an unwrapped model.
        stateful = {
            "G": self.G, "D": self.model.D, "G_ema": self.model.ema, "opt_G": self.opt_G, "opt_D": self.opt_D
        }  # fmt: skip
        if self.accountant is not None:
            stateful["dp_accountant"] = self.accountant
        return stateful

    def metadata(self) -> dict[str, Any]:
        return {
            "minibatch_std": self.model.D.mbstd is not None,
            "r1_regularisation": self.use_r1,
            "path_length_regularisation": self.use_pl,
            "private_networks": ["D"] if self.dp is not None else [],
            "dp_notes": (
                "only the discriminator is private (paper 001 §3.1); minibatch std and R1 are disabled "
                "under DP-SGD (they mix samples / need a double backward that Opacus cannot clip per sample)"
                if self.dp is not None
                else None
            ),
        }

    def privacy_metadata(self) -> dict[str, Any]:
        if self.accountant is None:
            return {}
        return {
            "dp_epsilon": dp_epsilon(self.accountant, self.delta),
            "dp_delta": self.delta,
            "dp_noise_multiplier": self.dp.noise_multiplier,
            "dp_max_grad_norm": self.dp.max_grad_norm,
        }

    def _randn(self, *shape: int) -> torch.Tensor:
        # Drawn on the CPU (whose RNG state the checkpoint keeps), then moved: exact resume on any device.
        # Under DDP every rank shares one RNG state; each draws for all ranks and keeps its own slice, so
        # ranks get independent latents and stay in step.
        rank, world_size = rank_and_world_size()
        if world_size > 1:
            return torch.randn(world_size, *shape)[rank].to(self.device)
        return torch.randn(*shape).to(self.device)

    def _backward(self, loss: torch.Tensor, module: nn.Module) -> None:
        """loss.backward(), then under DDP the mean of ``module``'s gradients over ranks (as StyleGAN2-ADA
        does by hand: DDP's own reducer does not support the double backward of R1 and path length)."""
        loss.backward()
        if is_distributed():
            world_size = rank_and_world_size()[1]
            for parameter in module.parameters():
                if parameter.grad is None:  # every rank has the same graph, so the same grads are None
                    continue
                torch.distributed.all_reduce(parameter.grad)
                parameter.grad /= world_size

    def _generate(self, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Fake images [B, C, R, R] and their ws [B, num_ws, w_dim], with style mixing regularisation."""
        batch, num_ws = len(labels), self.G.num_ws
        ws = self.G.mapping(self._randn(batch, self.config.z_dim), labels)[:, None].repeat(1, num_ws, 1)
        if self.config.style_mixing_prob > 0:
            # From a random layer on, the styles of a second z (same label) take over (StyleGAN §3.1).
            cutoff = int(torch.randint(1, num_ws, ()))
            if float(torch.rand(())) >= self.config.style_mixing_prob:
                cutoff = num_ws
            if cutoff < num_ws:
                mixed = self.G.mapping(self._randn(batch, self.config.z_dim), labels)
                ws = torch.cat([ws[:, :cutoff], mixed[:, None].repeat(1, num_ws - cutoff, 1)], dim=1)
        return self.G.synthesis(ws), ws

    def _generator_labels(self, batch_labels: torch.Tensor) -> torch.Tensor:
        """Classes of the fakes G trains on: the real batch's labels (the training set's class distribution,
        as StyleGAN2-ADA), but under DP uniformly drawn classes of the expected batch size, so that G sees
        nothing of the private batch (not its labels, not its Poisson size) and only learns through D."""
        if self.dp is None:
            return batch_labels
        return torch.randint(self.model.num_classes, (self.expected_batch_size,)).to(self.device)

    def step(self, images: torch.Tensor, labels: torch.Tensor, step: int) -> dict[str, float]:
        config = self.config
        real = (images.to(self.device) * 2 - 1).detach()
        labels = labels.to(self.device)
        losses: dict[str, float] = {}
        self.G.train()
        self.D.train()
        generator_labels = self._generator_labels(labels)
        self.D.requires_grad_(False)
        # G main: non-saturating logistic loss, softplus(-D(G(z))).
        self.opt_G.zero_grad(set_to_none=True)
        fake, _ = self._generate(generator_labels)
        if self.dp is None:
            loss_G = F.softplus(-self.D(fake, generator_labels)).mean()
            self._backward(loss_G, self.G)
        else:
            with discriminator_hooks_disabled(self.D):  # G's backward must not record D per-sample grads
                loss_G = F.softplus(-self.D(fake, generator_labels)).mean()
                loss_G.backward()
        self.opt_G.step()
        losses["loss_G"] = float(loss_G.detach())

        # G path-length regularisation, lazily every pl_interval steps (weight scaled by the interval).
        if self.use_pl and step % config.pl_interval == 0:
            self.opt_G.zero_grad(set_to_none=True)
            pl_batch = max(1, len(generator_labels) // config.pl_batch_shrink)
            fake, ws = self._generate(generator_labels[:pl_batch])
            pl_noise = self._randn(*fake.shape) / math.sqrt(fake.shape[2] * fake.shape[3])
            (pl_grads,) = torch.autograd.grad((fake * pl_noise).sum(), ws, create_graph=True)
            lengths = pl_grads.square().sum(dim=2).mean(dim=1).sqrt()
            with torch.no_grad():
                self.G.path_length_mean.lerp_(lengths.mean(), config.pl_decay)
            penalty = (lengths - self.G.path_length_mean).square().mean()
            self._backward(penalty * config.pl_weight * config.pl_interval, self.G)
            self.opt_G.step()
            losses["path_length_penalty"] = float(penalty.detach())
        self.D.requires_grad_(True)

        # D main: softplus(D(fake)) + softplus(-D(real)); per sample i the pair (real_i, fake_i).
        self.opt_D.zero_grad(set_to_none=True)
        if len(labels) == 0:
            # An empty Poisson batch (DP only): Opacus' functorch path cannot vmap over zero samples, so D
            # gets empty per-sample gradients and the DP optimiser takes DP-SGD's pure-noise step.
            for parameter in self.model.D.parameters():
                parameter.grad_sample = torch.zeros(0, *parameter.shape, device=parameter.device)
            self.opt_D.step()
            losses["loss_D"] = 0.0
        else:
            with torch.no_grad():
                fake = self._generate(labels)[0]
            logits_fake = self.D(fake, labels)
            logits_real = self.D(real, labels)
            loss_D = per_sample_mean(F.softplus(logits_fake) + F.softplus(-logits_real))
            self._backward(loss_D, self.D)
            self.opt_D.step()
            losses["loss_D"] = float(loss_D.detach())

        # D R1 penalty on real images, lazily every r1_interval steps: gamma/2 * |grad_x D(x)|^2.
        if self.use_r1 and step % config.r1_interval == 0 and len(labels):
            self.opt_D.zero_grad(set_to_none=True)
            real_input = real.requires_grad_(True)
            (r1_grads,) = torch.autograd.grad(self.D(real_input, labels).sum(), real_input, create_graph=True)
            penalty = r1_grads.square().sum(dim=[1, 2, 3]).mean()
            self._backward(penalty * (config.r1_gamma / 2) * config.r1_interval, self.D)
            self.opt_D.step()
            losses["r1_penalty"] = float(penalty.detach())

        self.model.ema.update(self.G)
        if self.accountant is not None:
            losses["epsilon"] = dp_epsilon(self.accountant, self.delta)
        return losses
