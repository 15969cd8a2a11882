"""Class-conditional latent diffusion model (paper 000 §4.2.3; Rombach et al. 2022) on MONAI.

Two stages, both in ``fit``:

1. **Autoencoder** (MONAI ``AutoencoderKL``): images in [-1, 1] -> a Gaussian posterior over latents of
   ``latent_channels`` channels at 1 / 2 ** (len(autoencoder_channels) - 1) of the image size (paper: a
   64x64x3 latent for 256x256 inputs), trained with L1 reconstruction + kl_weight * KL (paper: 1e-6),
   optionally + a patch adversarial loss (MONAI ``PatchDiscriminator``). The reference LDM also uses a
   LPIPS perceptual loss; its VGG weights cannot be had offline, so it is left out (bundle docs say so).
   Checkpointed on its own (``<checkpoint stem>_autoencoder.pt``) so a killed run resumes either stage.
2. **Diffusion** (MONAI ``DiffusionModelUNet``) on the latents scaled by 1 / std (the "scale factor",
   computed on the first training batch and stored in the checkpoint): epsilon prediction with the DDPM
   loss; the class enters through cross-attention to a learned 512-d class embedding used as a one-token
   context [B, 1, 512]. Index ``num_classes`` of the embedding is the "no class" token of classifier-free
   guidance. An EMA of the U-Net (and embedding) is used for sampling. The training loop, the loss and
   the DDPM / DDIM sampler are the diffusion library's, shared with the pixel DDPM
   (``medsyn.models.diffusion_generator`` and the modules it names), run in latent space.

Sources: [000] paper 000 §4.2.3; [LDM] Rombach et al. 2022 and their released configs (kl-f4 first
stage; LDM-4 U-Net with model_channels 224, channel_mult 1,2,3,4, attention at latent resolutions 32, 16,
8, 32 channels per head; EMA); [CFG] Ho & Salimans 2022.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from monai.losses import PatchAdversarialLoss
from monai.networks.nets import AutoencoderKL, PatchDiscriminator
from torch import nn

from medsyn.data.image_set import ImageSet
from medsyn.models.base import (
    check_divisible,
    check_training_set,
    count_parameters,
    join_batches,
    rechunk,
    training_set_metadata,
)
from medsyn.models.diffusion_generator import (
    DiffusionGenerator,
    check_diffusion_config,
    check_positive_integers,
    diffusion_unet,
    store_as_tuples,
)
from medsyn.models.diffusion_sampling import DiffusionSamplingConfig, NoiseSchedule
from medsyn.training.batches import ShuffledBatches
from medsyn.training.device import resolve_device
from medsyn.training.distributed import wrap_data_parallel
from medsyn.training.ema import ExponentialMovingAverage
from medsyn.training.loop import TrainingRun, run_training
from medsyn.training.settings import TrainingSettings

__all__ = ["LDMConfig", "LatentCodec", "CrossAttentionUNet", "ConditionalLDM", "autoencoder_checkpoint_path"]

# Latents decoded together: the images ``sample_batches`` yields at a time (memory, not results, depends on it).
DECODE_CHUNK = 32


@dataclass(frozen=True)
class LDMConfig:
    """Latent diffusion hyper-parameters; defaults are the paper's 256x256 model ([000], else [LDM]).

    Stage 1 (autoencoder):
    autoencoder_channels: AutoencoderKL channels per level [LDM kl-f4: 128 x (1, 2, 4)]; the latent is
        downsampled by 2 ** (len - 1) = 4, so 256x256 -> 64x64 [000].
    autoencoder_attention_levels: attention per level [LDM: none besides the mid-block attention].
    autoencoder_num_res_blocks, autoencoder_norm_num_groups: [LDM: 2, 32].
    latent_channels: [000: 3].
    kl_weight: [000: beta = 1e-6].
    autoencoder_learning_rate, autoencoder_batch_size: Adam [000: 4.5e-6, 16].
    autoencoder_epochs: [000: 50]; autoencoder_steps, when set, overrides it (tests, tiny runs).
    adversarial_weight: weight of the least-squares patch-GAN loss on the decoder (0: off); the
        discriminator trains from ``adversarial_start_step`` on (the reference config waits 50k steps);
        discriminator_layers: stride-2 layers of the patch discriminator [LDM: 3]; images need a side of
        at least 2 ** (discriminator_layers + 2).
    Stage 2 (diffusion on latents):
    channels, attention_levels, num_res_blocks, num_head_channels, norm_num_groups: the U-Net
        [LDM-4: 224 x (1, 2, 3, 4), attention at the last three levels, 2, 32, 32]; about 415M
        parameters, 464M with the autoencoder ([000]: "between 400 million to 600 million").
    class_embedding_dim: cross-attention context size [000: 512].
    num_train_timesteps, beta_schedule, beta_start, beta_end: [000: T = 1000, linear, 0.0015 .. 0.0195].
        (The reference code's "linear" is MONAI's "scaled_linear_beta"; [000] says linear, so we use
        "linear_beta".)
    learning_rate: [000: 1e-6]; the batch size is the training settings' batch_size [000: 16].
    ema_decay: [LDM: 0.9999]. label_dropout: [CFG: 0.1].
    sampler, sampling_steps, eta, guidance_scale: ``sample`` defaults [000 samples with DDPM, 1000 steps].
    """

    autoencoder_channels: tuple[int, ...] = (128, 256, 512)
    autoencoder_attention_levels: tuple[bool, ...] = (False, False, False)
    autoencoder_num_res_blocks: int = 2
    autoencoder_norm_num_groups: int = 32
    latent_channels: int = 3
    kl_weight: float = 1e-6
    autoencoder_learning_rate: float = 4.5e-6
    autoencoder_batch_size: int = 16
    autoencoder_epochs: int = 50
    autoencoder_steps: int | None = None
    adversarial_weight: float = 0.0
    adversarial_start_step: int = 0
    discriminator_layers: int = 3
    channels: tuple[int, ...] = (224, 448, 672, 896)
    attention_levels: tuple[bool, ...] = (False, True, True, True)
    num_res_blocks: int = 2
    num_head_channels: int = 32
    norm_num_groups: int = 32
    class_embedding_dim: int = 512
    num_train_timesteps: int = 1000
    beta_schedule: str = "linear_beta"
    beta_start: float = 0.0015
    beta_end: float = 0.0195
    learning_rate: float = 1e-6
    ema_decay: float = 0.9999
    label_dropout: float = 0.1
    sampler: str = "ddpm"
    sampling_steps: int = 50
    eta: float = 0.0
    guidance_scale: float = 1.0

    def __post_init__(self) -> None:
        check_diffusion_config(self, "ldm")
        store_as_tuples(self, ("autoencoder_channels", "autoencoder_attention_levels"), "ldm")
        if len(self.autoencoder_attention_levels) != len(self.autoencoder_channels):
            raise ValueError("ldm autoencoder_attention_levels needs one entry per autoencoder_channels level")
        positive = ("autoencoder_num_res_blocks", "autoencoder_norm_num_groups", "latent_channels",
                    "autoencoder_batch_size", "autoencoder_epochs", "class_embedding_dim",
                    "discriminator_layers")  # fmt: skip
        check_positive_integers(self, positive, "ldm")
        bad = [c for c in self.autoencoder_channels if not isinstance(c, int) or c % self.autoencoder_norm_num_groups]
        if bad:
            raise ValueError(
                f"ldm autoencoder_norm_num_groups={self.autoencoder_norm_num_groups} must divide every "
                f"autoencoder_channels entry; not {bad}"
            )
        if self.autoencoder_steps is not None and (not isinstance(self.autoencoder_steps, int) or self.autoencoder_steps < 0):
            raise ValueError(f"ldm autoencoder_steps must be an integer >= 0 or null, got {self.autoencoder_steps!r}")
        for key in ("kl_weight", "adversarial_weight"):
            value = getattr(self, key)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"ldm {key} must be a finite number >= 0, got {value!r}")
        if not isinstance(self.autoencoder_learning_rate, (int, float)) or not self.autoencoder_learning_rate > 0:
            raise ValueError(f"ldm autoencoder_learning_rate must be > 0, got {self.autoencoder_learning_rate!r}")
        if not isinstance(self.adversarial_start_step, int) or self.adversarial_start_step < 0:
            raise ValueError(f"ldm adversarial_start_step must be an integer >= 0, got {self.adversarial_start_step!r}")

    @property
    def downsampling(self) -> int:
        """Image size / latent size."""
        return 2 ** (len(self.autoencoder_channels) - 1)

    def schedule(self) -> NoiseSchedule:
        # Scaled latents are unbounded: clipping the predicted x_0 to [-1, 1] would distort them.
        return NoiseSchedule(self.num_train_timesteps, self.beta_schedule, self.beta_start, self.beta_end, False)

    def sampling(self) -> DiffusionSamplingConfig:
        return DiffusionSamplingConfig(self.sampler, self.sampling_steps, self.eta, self.guidance_scale)

    def autoencoder_steps_for(self, num_images: int) -> int:
        if self.autoencoder_steps is not None:
            return self.autoencoder_steps
        return math.ceil(self.autoencoder_epochs * num_images / min(self.autoencoder_batch_size, num_images))


class LatentCodec(nn.Module):
    """The first stage: AutoencoderKL plus the latent scale factor (a buffer, so it is checkpointed).

    encode(images float [B,C,H,W] in [0,1]) -> scaled latents [B, latent_channels, H/f, W/f] (a posterior
    sample, global RNG); decode(scaled latents) -> images in [0, 1].
    """

    def __init__(self, config: LDMConfig, image_channels: int) -> None:
        super().__init__()
        self.autoencoder = AutoencoderKL(
            spatial_dims=2,
            in_channels=image_channels,
            out_channels=image_channels,
            channels=config.autoencoder_channels,
            attention_levels=config.autoencoder_attention_levels,
            latent_channels=config.latent_channels,
            num_res_blocks=config.autoencoder_num_res_blocks,
            norm_num_groups=config.autoencoder_norm_num_groups,
        )
        self.register_buffer("scale_factor", torch.ones(()))

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        mean, sigma = self.autoencoder.encode(images * 2.0 - 1.0)
        return self.autoencoder.sampling(mean, sigma) * self.scale_factor

    @torch.no_grad()
    def posterior_mean(self, images: torch.Tensor) -> torch.Tensor:
        """Unscaled posterior means [B, latent_channels, H/f, W/f]."""
        return self.autoencoder.encode(images * 2.0 - 1.0)[0]

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return ((self.autoencoder.decode(latents / self.scale_factor) + 1.0) / 2.0).clamp(0.0, 1.0)


class CrossAttentionUNet(nn.Module):
    """DiffusionModelUNet conditioned by cross-attention to a learned class embedding.

    forward(x_t [B,C,h,w], timesteps int64 [B], labels int64 [B] in [0, num_classes]) -> epsilon [B,C,h,w];
    the context is embedding(labels) as one token, [B, 1, class_embedding_dim].
    """

    def __init__(self, config: LDMConfig, *, num_classes: int) -> None:
        super().__init__()
        self.class_embedding = nn.Embedding(num_classes + 1, config.class_embedding_dim)
        self.unet = diffusion_unet(
            config, config.latent_channels, with_conditioning=True, cross_attention_dim=config.class_embedding_dim
        )

    def forward(self, x: torch.Tensor, timesteps: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.unet(x, timesteps=timesteps, context=self.class_embedding(labels)[:, None, :])


def autoencoder_checkpoint_path(checkpoint_path: str | Path) -> Path:
    """Where stage 1 keeps its own checkpoint: next to the final one, ``<stem>_autoencoder<suffix>``."""
    path = Path(checkpoint_path)
    return path.with_name(f"{path.stem}_autoencoder{path.suffix}")


def autoencoder_per_sample_losses(
    images: torch.Tensor, reconstruction: torch.Tensor, mean: torch.Tensor, sigma: torch.Tensor
) -> dict[str, torch.Tensor]:
    """[B] each: l1 = mean |x - x_hat| over pixels (x in [-1, 1]); kl = KL(N(mean, sigma^2) || N(0, I)) summed
    over latent elements."""
    l1 = (reconstruction - images).abs().flatten(1).mean(1)
    kl = 0.5 * (mean.pow(2) + sigma.pow(2) - torch.log(sigma.pow(2)) - 1).flatten(1).sum(1)
    return {"l1": l1, "kl": kl}


class ConditionalLDM(DiffusionGenerator):
    """Class-conditional latent diffusion model (the ``"ldm"`` registry entry).

    Weights are initialised from ``init_seed``, so two models built from one config are identical.
    DP-SGD is not offered for the LDM (neither paper trains one privately).
    """

    name = "ldm"
    config_class = LDMConfig

    def __init__(
        self,
        config: LDMConfig,
        *,
        num_classes: int,
        image_shape: tuple[int, int, int],
        training: TrainingSettings | None = None,
        init_seed: int = 0,
    ) -> None:
        super().__init__(config, num_classes=num_classes, image_shape=image_shape, training=training)
        if self.training.dp is not None:
            raise ValueError("dp: DP-SGD is available for the cvae, ddpm and stylegan2 models, not for ldm")
        unet_levels = len(config.channels) - 1
        check_divisible(
            self.image_shape,
            config.downsampling * 2**unet_levels,
            "ldm image_size",
            f"the autoencoder downsamples by {config.downsampling} (autoencoder_channels) and the U-Net "
            f"by {2 ** unet_levels} (channels)",
        )
        channels, height, width = self.image_shape
        if config.adversarial_weight > 0 and min(height, width) < 2 ** (config.discriminator_layers + 2):
            raise ValueError(
                f"ldm discriminator_layers={config.discriminator_layers} needs images of at least "
                f"{2 ** (config.discriminator_layers + 2)} pixels a side, got {height}x{width}"
            )
        self.latent_shape = (config.latent_channels, height // config.downsampling, width // config.downsampling)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(init_seed)
            # Frozen except while stage 1 trains it (and frozen weights also pick the same CPU kernels
            # in a fresh, a trained and a loaded model, so their samples agree bit for bit).
            self.codec = LatentCodec(config, channels).requires_grad_(False)
            self.network = CrossAttentionUNet(config, num_classes=num_classes)
            self.discriminator = (
                PatchDiscriminator(
                    spatial_dims=2,
                    channels=64,  # [LDM] ndf
                    in_channels=channels,
                    out_channels=1,
                    num_layers_d=config.discriminator_layers,
                )
                if config.adversarial_weight > 0
                else None
            )
        self.ema = ExponentialMovingAverage(self.network, config.ema_decay)
        self.sampling = config.sampling()
        self.autoencoder_history: list[dict[str, float]] = []

    def parameter_counts(self) -> dict[str, int]:
        """Parameters of the autoencoder and of the diffusion U-Net + class embedding (no discriminator)."""
        return {"autoencoder": count_parameters(self.codec), "diffusion": count_parameters(self.network)}

    def parameter_count(self) -> int:
        return sum(self.parameter_counts().values())

    # ------------------------------------------------------------------ training
    def fit(self, train: ImageSet, checkpoint_path: str | Path, *, seed: int = 0, progress: bool = True) -> Path:
        """Stage 1 (autoencoder), then stage 2 (diffusion); each resumes from its own checkpoint. Returns the
        final checkpoint, which holds both stages (``load_generator`` needs only it)."""
        check_training_set(train, self.num_classes, self.image_shape)
        checkpoint_path = Path(checkpoint_path)
        metadata = {
            **training_set_metadata(train),
            "parameter_counts": self.parameter_counts(),
            "autoencoder_losses": "l1 + kl_weight * kl" + (" + adversarial" if self.discriminator else "")
            + " (no LPIPS: its weights are not available offline)",
        }
        self.codec.to(resolve_device(self.training.device))
        if not checkpoint_path.exists():  # stage 2 has not started: (finish) stage 1 first
            self._fit_autoencoder(train, autoencoder_checkpoint_path(checkpoint_path), seed, progress, metadata)
            self.codec.scale_factor.fill_(self._latent_scale_factor(train, seed))
        self.codec.requires_grad_(False).eval()
        self.train_noise_predictor(
            train,
            checkpoint_path,
            to_x_start=self.codec.encode,
            seed=seed,
            progress=progress,
            metadata=metadata,
            extra_stateful={"codec": self.codec},
        )
        self.codec.cpu()  # sampling and checkpoints are device-independent
        self.metadata["scale_factor"] = float(self.codec.scale_factor)
        return checkpoint_path

    def _latent_scale_factor(self, train: ImageSet, seed: int) -> float:
        """1 / std of the posterior means of the first training batch (the batch stage 2 starts with)."""
        first_batch = ShuffledBatches(len(train), self.training.batch_size, seed).next()
        self.codec.eval()
        device = self.codec.scale_factor.device
        latents = self.codec.posterior_mean(train.images[first_batch].to(device))
        std = float(latents.std())
        if not std > 0 or not math.isfinite(std):
            raise ValueError(f"the autoencoder's latents of {train.source} have std {std}; cannot scale them")
        return 1.0 / std

    def _fit_autoencoder(
        self, train: ImageSet, path: Path, seed: int, progress: bool, metadata: dict[str, Any]
    ) -> None:
        config = self.config
        autoencoder = self.codec.autoencoder.requires_grad_(True)
        optimizer = torch.optim.Adam(autoencoder.parameters(), lr=config.autoencoder_learning_rate)
        stateful: dict[str, Any] = {"autoencoder": autoencoder, "optimizer": optimizer}
        trained = wrap_data_parallel(autoencoder)
        adversarial = None
        if self.discriminator is not None:
            self.discriminator.to(self.codec.scale_factor.device)
            adversarial = PatchAdversarialLoss(criterion="least_squares")
            discriminator = wrap_data_parallel(self.discriminator)
            discriminator_optimizer = torch.optim.Adam(
                self.discriminator.parameters(), lr=config.autoencoder_learning_rate
            )
            stateful.update(discriminator=self.discriminator, discriminator_optimizer=discriminator_optimizer)

        def step(images: torch.Tensor, labels: torch.Tensor, step_index: int) -> dict[str, float]:
            trained.train()
            x = images * 2.0 - 1.0
            optimizer.zero_grad(set_to_none=True)
            reconstruction, mean, sigma = trained(x)
            losses = autoencoder_per_sample_losses(x, reconstruction, mean, sigma)
            loss = losses["l1"].mean() + config.kl_weight * losses["kl"].mean()
            logged = {"l1": float(losses["l1"].detach().mean()), "kl": float(losses["kl"].detach().mean())}
            use_adversarial = adversarial is not None and step_index >= config.adversarial_start_step
            if use_adversarial:
                fake_logits = discriminator(reconstruction.contiguous())[-1]
                generator_adversarial = adversarial(fake_logits, target_is_real=True, for_discriminator=False)
                loss = loss + config.adversarial_weight * generator_adversarial
                logged["adversarial"] = float(generator_adversarial.detach())
            loss.backward()
            optimizer.step()
            if use_adversarial:
                discriminator_optimizer.zero_grad(set_to_none=True)
                fake = adversarial(discriminator(reconstruction.detach().contiguous())[-1], False, True)
                real = adversarial(discriminator(x.contiguous())[-1], True, True)
                discriminator_loss = 0.5 * (fake + real)
                discriminator_loss.backward()
                discriminator_optimizer.step()
                logged["discriminator"] = float(discriminator_loss.detach())
            logged["loss"] = float(loss.detach())
            return logged

        run = TrainingRun(
            model_name=f"{self.name}_autoencoder",
            config=self.checkpoint_config(),
            stateful=stateful,
            checkpoint_path=path,
            steps=config.autoencoder_steps_for(len(train)),
            batch_size=config.autoencoder_batch_size,
            seed=seed,
            checkpoint_every=self.training.checkpoint_every,
            metadata=metadata,
            progress=progress,
            device=self.codec.scale_factor.device,
            num_workers=self.training.num_workers,
        )
        self.autoencoder_history = run_training(run, train, step)
        autoencoder.requires_grad_(False)
        if self.discriminator is not None:
            self.discriminator.cpu()

    # ------------------------------------------------------------------ checkpoints
    def load_state(self, state: dict[str, Any]) -> None:
        """Load both stages: the codec (autoencoder and latent scale factor), the U-Net and its EMA."""
        self.codec.load_state_dict(state["codec"])
        super().load_state(state)

    # ------------------------------------------------------------------ sampling
    @torch.no_grad()
    def sample(self, labels: torch.Tensor, seed: int = 0, **sampling_overrides: Any) -> torch.Tensor:
        """labels int64 [N] in [0, num_classes) -> images float32 [N, C, H, W] in [0, 1].

        Denoises latents with the EMA U-Net, then decodes them. sampling_overrides: sampler, sampling_steps,
        eta, guidance_scale (defaults: ``self.sampling``). Deterministic for a seed. ``sample_batches``'
        chunks, concatenated.
        """
        return join_batches(self.sample_batches(labels, seed, **sampling_overrides), self.image_shape)

    def sample_batches(
        self, labels: torch.Tensor, seed: int = 0, **sampling_overrides: Any
    ) -> Iterator[torch.Tensor]:
        """``sample``'s images in order, as chunks of DECODE_CHUNK (the last possibly fewer; none for N = 0).

        Streamed end to end: latents are denoised SAMPLE_CHUNK at a time
        (``medsyn.models.diffusion_sampling``), each chunk only when the latents denoised so far are used
        up, and decoded DECODE_CHUNK at a time, so at most one denoising chunk of latents (plus fewer than
        DECODE_CHUNK left over from the one before) and one decoded chunk of images are held. labels and
        sampling_overrides are validated (and DECODE_CHUNK read) when this is called.
        """
        latents = self.denoise_batches(labels, seed, self.latent_shape, sampling_overrides)
        self.codec.eval()
        return self._decoded_batches(rechunk(latents, DECODE_CHUNK))

    @torch.no_grad()
    def _decoded_batches(self, latent_chunks: Iterator[torch.Tensor]) -> Iterator[torch.Tensor]:
        for chunk in latent_chunks:
            yield self.codec.decode(chunk).float()
