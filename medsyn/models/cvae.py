"""Conditional variational autoencoder (paper 000 §4.2.1; Sohn et al. 2015).

Encoder: one stride-2 3x3 convolution per hidden dim (paper: 16, 32, 64, 128, 256, 1024), each followed
by BatchNorm and LeakyReLU; two linear heads give the mean and log-variance of a 128-d latent. The
class condition (one-hot) is concatenated to the encoder input as extra constant channels and to the
sampled latent. The decoder mirrors the encoder with stride-2 transposed convolutions and ends in a
3x3 convolution and a sigmoid (images in [0, 1]).

Loss per image = mean squared reconstruction error over pixels + beta * KL(q(z|x,y) || N(0, I)),
beta = 0.002; Adam, lr 1e-3, weight decay 0.01 (paper 000 §4.2.1). The number of stride-2 stages is
len(hidden_dims), so H and W must be divisible by 2 ** len(hidden_dims): the paper's six stages need
images of at least 64x64 (256x256 in the paper, giving a 4x4x1024 bottleneck); 32x32 data uses a
shorter list such as (8, 16, 32).

Under DP-SGD (``training.dp``) BatchNorm is replaced by GroupNorm (Opacus ModuleValidator.fix) and the
whole model is private (paper 001 §3.1: VAEs are noised as a whole).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
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
from medsyn.training.device import resolve_device
from medsyn.training.distributed import unwrap
from medsyn.training.dp import (
    make_module_private_compatible,
    per_sample_mean,
)
from medsyn.training.optimisation_setup import prepare_optimisation
from medsyn.training.settings import (
    TrainingSettings,
)

__all__ = ["CVAE", "CVAEConfig", "CVAENetwork", "SAMPLE_CHUNK"]

SAMPLE_CHUNK = 256  # latents decoded together in ``sample_batches`` (memory, not results, depends on it)


@dataclass(frozen=True)
class CVAEConfig:
    """CVAE hyper-parameters; defaults are paper 000 §4.2.1.

    hidden_dims: encoder channels, one stride-2 stage each. The paper prints "16, 32, 54, 128, 256, 1024";
        54 breaks the doubling pattern of every other stage, so we read it as a typo for 64.
    latent_dim: size of z (paper: 128).
    beta: weight of the KL term (paper: 0.002).
    learning_rate, weight_decay: Adam (paper: 1e-3, 0.01).
    leaky_relu_slope: LeakyReLU negative slope (paper: unspecified; 0.01 is torch's default).
    """

    hidden_dims: tuple[int, ...] = (16, 32, 64, 128, 256, 1024)
    latent_dim: int = 128
    beta: float = 0.002
    learning_rate: float = 1e-3
    weight_decay: float = 0.01
    leaky_relu_slope: float = 0.01

    def __post_init__(self) -> None:
        dims = self.hidden_dims
        if isinstance(dims, int) or not isinstance(dims, (list, tuple)) or len(dims) == 0:
            raise ValueError(f"cvae hidden_dims must be a non-empty list of positive integers, got {dims!r}")
        if not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in dims):
            raise ValueError(f"cvae hidden_dims must be a non-empty list of positive integers, got {dims!r}")
        object.__setattr__(self, "hidden_dims", tuple(dims))
        if not isinstance(self.latent_dim, int) or self.latent_dim < 1:
            raise ValueError(f"cvae latent_dim must be a positive integer, got {self.latent_dim!r}")
        for key in ("beta", "weight_decay", "leaky_relu_slope"):
            value = getattr(self, key)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"cvae {key} must be a finite number >= 0, got {value!r}")
        if not isinstance(self.learning_rate, (int, float)) or not self.learning_rate > 0:
            raise ValueError(f"cvae learning_rate must be > 0, got {self.learning_rate!r}")


class CVAENetwork(nn.Module):
    """The encoder/decoder pair.

    forward(images float [B,C,H,W] in [0,1], condition float [B,K] one-hot)
        -> (reconstruction [B,C,H,W] in (0,1), mean [B,latent], log_variance [B,latent])
    """

    def __init__(self, config: CVAEConfig, *, num_classes: int, image_shape: tuple[int, int, int]) -> None:
        super().__init__()
        channels, height, width = image_shape
        stages = len(config.hidden_dims)
        factor = 2**stages
        if height % factor or width % factor:
            raise ValueError(
                f"cvae hidden_dims has {stages} stride-2 stages, so image height and width must be divisible by "
                f"{factor}; got {height}x{width} (use fewer hidden_dims or another image_size)"
            )
        self.num_classes = num_classes
        self.bottleneck_shape = (config.hidden_dims[-1], height // factor, width // factor)
        bottleneck_size = math.prod(self.bottleneck_shape)

        def stage(conv: nn.Module, out_channels: int) -> nn.Sequential:
            return nn.Sequential(conv, nn.BatchNorm2d(out_channels), nn.LeakyReLU(config.leaky_relu_slope))

        encoder, in_channels = [], channels + num_classes
        for dim in config.hidden_dims:
            encoder.append(stage(nn.Conv2d(in_channels, dim, 3, stride=2, padding=1), dim))
            in_channels = dim
        self.encoder = nn.Sequential(*encoder, nn.Flatten())
        self.to_mean = nn.Linear(bottleneck_size, config.latent_dim)
        self.to_log_variance = nn.Linear(bottleneck_size, config.latent_dim)

        self.from_latent = nn.Linear(config.latent_dim + num_classes, bottleneck_size)
        decoder = []
        reversed_dims = config.hidden_dims[::-1]
        for dim_in, dim_out in zip(reversed_dims, reversed_dims[1:] + reversed_dims[-1:]):
            upsample = nn.ConvTranspose2d(dim_in, dim_out, 3, stride=2, padding=1, output_padding=1)
            decoder.append(stage(upsample, dim_out))
        self.decoder = nn.Sequential(
            *decoder, nn.Conv2d(reversed_dims[-1], channels, 3, padding=1), nn.Sigmoid()
        )

    def encode(self, images: torch.Tensor, condition: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        condition_maps = condition[:, :, None, None].expand(-1, -1, *images.shape[2:])
        features = self.encoder(torch.cat([images, condition_maps], dim=1))
        return self.to_mean(features), self.to_log_variance(features)

    def decode(self, latent: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        features = self.from_latent(torch.cat([latent, condition], dim=1))
        return self.decoder(features.view(len(latent), *self.bottleneck_shape))

    def forward(self, images: torch.Tensor, condition: torch.Tensor):
        mean, log_variance = self.encode(images, condition)
        latent = mean + torch.randn_like(mean) * torch.exp(0.5 * log_variance)
        return self.decode(latent, condition), mean, log_variance


def cvae_per_sample_losses(
    images: torch.Tensor,
    reconstruction: torch.Tensor,
    mean: torch.Tensor,
    log_variance: torch.Tensor,
    beta: float,
) -> dict[str, torch.Tensor]:
    """Per-image losses [B]: reconstruction = mean squared error over pixels, kl = KL(N(mean, var) || N(0, I))
    summed over latent dims, loss = reconstruction + beta * kl."""
    reconstruction_error = (reconstruction - images).pow(2).flatten(1).mean(1)
    kl = -0.5 * (1 + log_variance - mean.pow(2) - log_variance.exp()).sum(1)
    return {"loss": reconstruction_error + beta * kl, "reconstruction": reconstruction_error, "kl": kl}


class CVAE(RegisteredGenerator):
    """Class-conditional VAE generator (the ``"cvae"`` registry entry)."""

    name = "cvae"
    config_class = CVAEConfig

    def __init__(
        self,
        config: CVAEConfig,
        *,
        num_classes: int,
        image_shape: tuple[int, int, int],
        training: TrainingSettings | None = None,
    ) -> None:
        super().__init__(config, num_classes=num_classes, image_shape=image_shape, training=training)
        self.network = self._build_network(seed=0)

    def _build_network(self, seed: int) -> nn.Module:
        """A freshly initialised network; initial weights depend only on ``seed`` (not on global RNG state)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            network = CVAENetwork(self.config, num_classes=self.num_classes, image_shape=self.image_shape)
        self.batchnorm_replaced_by_groupnorm = False
        if self.training.dp is not None:
            network, self.batchnorm_replaced_by_groupnorm = make_module_private_compatible(network)
        return network

    def parameter_count(self) -> int:
        return count_parameters(self.network)

    def fit(
        self, train: ImageSet, checkpoint_path: str | Path, *, seed: int = 0, progress: bool = True
    ) -> Path:
        """Train on ``train`` for ``training.steps`` steps, resuming from ``checkpoint_path`` if it exists."""
        check_training_set(train, self.num_classes, self.image_shape)
        settings = self.training
        # Re-initialised from the seed so a run is a function of (config, data, seed) alone; a resumed run
        # then overwrites these weights with the checkpoint's.
        device = resolve_device(settings.device)
        network = self.network = self._build_network(seed).to(device)
        optimizer = torch.optim.Adam(
            network.parameters(), lr=self.config.learning_rate, weight_decay=self.config.weight_decay
        )
        stateful: dict[str, Any] = {"network": network, "optimizer": optimizer}
        metadata: dict[str, Any] = {
            **training_set_metadata(train),
            "parameter_count": self.parameter_count(),
            "batchnorm_replaced_by_groupnorm": self.batchnorm_replaced_by_groupnorm,
        }
        setup = prepare_optimisation(network, optimizer, settings, num_train=len(train))
        trained, optimizer, metadata_fn = setup.module, setup.optimizer, setup.metadata_fn
        stateful.update(setup.stateful)
        metadata.update(setup.metadata)

        def step(images: torch.Tensor, labels: torch.Tensor, step_index: int) -> dict[str, float]:
            trained.train()
            optimizer.zero_grad(set_to_none=True)
            condition = F.one_hot(labels, self.num_classes).to(images.dtype)
            reconstruction, mean, log_variance = trained(images, condition)
            losses = cvae_per_sample_losses(images, reconstruction, mean, log_variance, self.config.beta)
            loss = per_sample_mean(losses["loss"])
            loss.backward()
            optimizer.step()
            return {key: float(per_sample_mean(value.detach())) for key, value in losses.items()}

        self.history, self.metadata = run_generator_training(
            step,
            train,
            model_name=self.name,
            checkpoint_config=self.checkpoint_config(),
            checkpoint_path=checkpoint_path,
            stateful=stateful,
            metadata=metadata,
            metadata_fn=metadata_fn,
            training=settings,
            seed=seed,
            progress=progress,
            device=device,
        )
        self.network = unwrap(trained).cpu()  # sampling and checkpoints are device-independent
        return Path(checkpoint_path)

    def load_state(self, state: dict[str, Any]) -> None:
        """Load the encoder/decoder network."""
        self.network.load_state_dict(state["network"])

    @torch.no_grad()
    def sample(self, labels: torch.Tensor, seed: int = 0) -> torch.Tensor:
        """labels: int64 [N] in [0, num_classes) -> images float32 [N, C, H, W] in [0, 1]; z ~ N(0, I) seeded.
        ``sample_batches``' chunks, concatenated."""
        return join_batches(self.sample_batches(labels, seed), self.image_shape)

    @torch.no_grad()
    def sample_batches(self, labels: torch.Tensor, seed: int = 0) -> Iterator[torch.Tensor]:
        """``sample``'s images in order, as chunks of SAMPLE_CHUNK (the last possibly fewer; none for N = 0).

        labels are validated, and all N latents z [N, latent_dim] drawn, when this is called; each chunk is
        decoded at its ``next()``.
        """
        labels = check_sample_labels(labels, self.num_classes)
        generator = torch.Generator().manual_seed(seed)
        latent = torch.randn(len(labels), self.config.latent_dim, generator=generator)
        self.network.eval()
        return self._decoded_chunks(latent, labels, SAMPLE_CHUNK)

    @torch.no_grad()
    def reconstruct(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """images float [N,C,H,W] in [0, 1] with their labels int64 [N] -> reconstructions float32 [N,C,H,W]
        in [0, 1]: decode(posterior mean of q(z|x,y), y), no latent noise, so pair i is (images[i], its
        reconstruction) and the result is deterministic (eval mode: BatchNorm running statistics). Encoded
        SAMPLE_CHUNK images at a time. The true pairs of the PSNR/SSIM/LPIPS true-pair metrics."""
        labels = check_sample_labels(labels, self.num_classes)
        if not isinstance(images, torch.Tensor) or tuple(images.shape[1:]) != self.image_shape:
            shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
            raise ValueError(f"cvae reconstruct: images must be a tensor [N, {', '.join(map(str, self.image_shape))}], "
                             f"got {shape}")
        if len(images) != len(labels):
            raise ValueError(f"cvae reconstruct: {len(images)} images but {len(labels)} labels")
        self.network.eval()
        device = next(self.network.parameters()).device
        chunks = []
        for start in range(0, len(labels), SAMPLE_CHUNK):
            batch = images[start : start + SAMPLE_CHUNK].to(device=device, dtype=torch.float32)
            condition = F.one_hot(labels[start : start + SAMPLE_CHUNK], self.num_classes).to(batch)
            mean, _log_variance = self.network.encode(batch, condition)
            chunks.append(self.network.decode(mean, condition).clamp(0, 1).cpu())
        return join_batches(chunks, self.image_shape)

    @torch.no_grad()
    def _decoded_chunks(
        self, latent: torch.Tensor, labels: torch.Tensor, size: int
    ) -> Iterator[torch.Tensor]:
        for start in range(0, len(labels), size):
            condition = F.one_hot(labels[start : start + size], self.num_classes).float()
            yield self.network.decode(latent[start : start + size], condition).clamp(0, 1)
