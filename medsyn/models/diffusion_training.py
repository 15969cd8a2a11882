"""Fitting a class-conditional noise predictor: the training loop of the pixel DDPM and the LDM's second stage.

``fit_noise_predictor`` trains ``network`` (x_t, t, labels) -> epsilon on x_0 = ``to_x_start(images)`` with
the DDPM loss and classifier-free label dropout (``medsyn.models.diffusion_sampling.noise_prediction_loss``),
keeps an exponential moving average of the weights for sampling, and checkpoints and resumes through
``medsyn.training.loop``. Under DP-SGD (``training.dp``) the whole network is private. The two models differ
only in ``to_x_start``: [0, 1] -> [-1, 1] for the pixel DDPM, the frozen encoder to scaled latents for the LDM.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from monai.networks.schedulers import DDPMScheduler
from torch import nn

from medsyn.data.image_set import ImageSet
from medsyn.models.base import run_generator_training
from medsyn.models.diffusion_sampling import NoiseSchedule, build_scheduler, noise_prediction_loss
from medsyn.training.device import resolve_device
from medsyn.training.distributed import unwrap
from medsyn.training.dp import make_module_private_compatible, per_sample_mean
from medsyn.training.ema import ExponentialMovingAverage
from medsyn.training.loop import StepFn
from medsyn.training.optimisation_setup import prepare_optimisation
from medsyn.training.settings import TrainingSettings

__all__ = ["fit_noise_predictor"]


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
    device = resolve_device(training.device)
    network, replaced = _placed_for_training(network, training, device)
    metadata["batchnorm_replaced_by_groupnorm"] = replaced
    ema = ExponentialMovingAverage(network, ema_decay)
    optimizer = torch.optim.Adam(network.parameters(), lr=learning_rate)
    stateful: dict[str, Any] = {**dict(extra_stateful or {}), "network": network, "optimizer": optimizer, "ema": ema}
    scheduler = build_scheduler(schedule, "ddpm")
    setup = prepare_optimisation(network, optimizer, training, num_train=len(train))
    stateful.update(setup.stateful)
    metadata.update(setup.metadata)
    step = _noise_prediction_step(
        setup.module,
        setup.optimizer,
        network,
        ema,
        scheduler,
        to_x_start=to_x_start,
        null_label=null_label,
        label_dropout=label_dropout,
    )
    history, final_metadata = run_generator_training(
        step,
        train,
        model_name=model_name,
        checkpoint_config=checkpoint_config,
        checkpoint_path=checkpoint_path,
        stateful=stateful,
        metadata=metadata,
        metadata_fn=setup.metadata_fn,
        training=training,
        seed=seed,
        progress=progress,
        device=device,
    )
    ema.module.cpu()  # sampling and checkpoints are device-independent
    return unwrap(setup.module).cpu(), ema, history, final_metadata


def _placed_for_training(
    network: nn.Module, training: TrainingSettings, device: torch.device
) -> tuple[nn.Module, bool]:
    """``network`` on ``device`` and, under DP-SGD, made Opacus-compatible; returns (network, whether a
    BatchNorm was replaced by GroupNorm). The MONAI U-Net has GroupNorm only: nothing is replaced, and the
    validation names any layer Opacus cannot handle."""
    network = network.to(device)
    if training.dp is None:
        return network, False
    return make_module_private_compatible(network)


def _noise_prediction_step(
    trained: nn.Module,
    optimizer: torch.optim.Optimizer,
    network: nn.Module,
    ema: ExponentialMovingAverage,
    scheduler: DDPMScheduler,
    *,
    to_x_start: Callable[[torch.Tensor], torch.Tensor],
    null_label: int,
    label_dropout: float,
) -> StepFn:
    """The training step: one ``optimizer`` step on the mean noise-prediction loss of the batch, then the
    EMA update. trained: what the step calls (``network`` itself, or its private / data-parallel wrapper);
    network: the plain module whose weights the EMA follows."""

    def step(images: torch.Tensor, labels: torch.Tensor, step_index: int) -> dict[str, float]:
        trained.train()
        optimizer.zero_grad(set_to_none=True)
        if len(images) == 0:
            _set_empty_per_sample_gradients(network)
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

    return step


def _set_empty_per_sample_gradients(network: nn.Module) -> None:
    """Prepare the step on an empty Poisson batch (DP-SGD only): MONAI's attention cannot reshape a batch of
    0, so Opacus gets the empty per-sample gradients directly; its step then adds pure noise, as DP-SGD must."""
    for parameter in network.parameters():
        if parameter.requires_grad:
            parameter.grad_sample = parameter.new_zeros((0, *parameter.shape))
