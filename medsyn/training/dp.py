"""DP-SGD with Opacus (paper 001 §3.1): per-sample gradient clipping + Gaussian noise, RDP accounting.

Paper 001 §3.1: "Given a normal distribution d ~ N(0, sigma^2), the backward pass is characterised by
adding a perturbation to the clipped gradients (g) such that g* = g + d"; the VAE and the DDPM are
private as a whole, the GAN only through its discriminator. sigma here is Opacus' noise multiplier
(noise std = sigma * max_grad_norm); epsilon is reported with delta = 1 / (training-set size).

How a generator uses this module (order matters: fix the module before building its optimiser)::

    module, replaced = make_module_private_compatible(module)         # BatchNorm -> GroupNorm, validated
    optimizer = torch.optim.Adam(module.parameters(), ...)
    module, optimizer, accountant = make_private(
        module, optimizer, noise_multiplier=sigma, max_grad_norm=c,
        sample_rate=batch_size / n_train, expected_batch_size=batch_size)
    # batches must be Poisson-sampled (TrainingRun(poisson_sampling=True)) for the accountant to hold;
    # use per_sample_mean(losses) as the loss so an empty Poisson batch still takes a (pure-noise) step;
    # put the accountant in TrainingRun.stateful so its history survives a restart;
    # report epsilon(accountant, delta).

GAN with only the discriminator private (paper 001 §3.1): call ``make_private`` on the discriminator
and its optimiser only. While the generator trains through the discriminator, wrap that forward/backward
in ``with discriminator_hooks_disabled(private_discriminator):`` so no per-sample gradients are
recorded, and zero the discriminator optimiser before its own step.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:  # opacus takes seconds to import; non-private runs never need it
    from opacus import GradSampleModule
    from opacus.accountants import RDPAccountant
    from opacus.optimizers import DPOptimizer

# Opacus records per-sample gradients with full backward hooks; on the first layer (whose input, the data,
# needs no gradient) torch warns on every backward. That is expected here and would flood the logs.
warnings.filterwarnings(
    "ignore",
    message="Full backward hook is firing when gradients are computed with respect to module outputs",
)

__all__ = [
    "default_delta",
    "discriminator_hooks_disabled",
    "epsilon",
    "make_module_private_compatible",
    "make_private",
    "per_sample_mean",
]


def make_module_private_compatible(module: nn.Module) -> tuple[nn.Module, bool]:
    """Replace layers Opacus cannot give per-sample gradients for (BatchNorm -> GroupNorm) and validate.

    Returns (fixed module, whether a BatchNorm was replaced); the flag belongs in the run's metadata as
    ``"batchnorm_replaced_by_groupnorm"``. Raises ValueError when a layer is still incompatible.
    """
    from opacus.validators import ModuleValidator

    had_batchnorm = any(isinstance(layer, nn.modules.batchnorm._BatchNorm) for layer in module.modules())
    fixed = ModuleValidator.fix(module)
    errors = ModuleValidator.validate(fixed, strict=False)
    if errors:
        raise ValueError(f"module {type(module).__name__} cannot be trained with DP-SGD: {errors}")
    return fixed, had_batchnorm


def make_private(
    module: nn.Module,
    optimizer: torch.optim.Optimizer,
    *,
    noise_multiplier: float,
    max_grad_norm: float,
    sample_rate: float,
    expected_batch_size: int,
    accountant: RDPAccountant | None = None,
) -> tuple[GradSampleModule, DPOptimizer, RDPAccountant]:
    """Wrap ``module``/``optimizer`` for DP-SGD and attach an RDP accountant to every optimiser step.

    module: already made compatible (``make_module_private_compatible``); its parameters are the ones
        ``optimizer`` updates. Returns the per-sample-gradient wrapper (call it like the module; the
        plain module is ``wrapper._module``), the noisy optimiser (its ``state_dict`` is the wrapped
        optimiser's) and the accountant (a ``state_dict``/``load_state_dict`` object for checkpoints).
    noise_multiplier: sigma >= 0 (0 clips without noise and gives epsilon = inf).
    max_grad_norm: per-sample L2 clipping bound C > 0.
    sample_rate: Poisson sampling probability q in (0, 1] of the batch order actually used.
    expected_batch_size: q * training-set size; Opacus divides the noisy gradient sum by it.
    """
    if not math.isfinite(noise_multiplier) or noise_multiplier < 0:
        raise ValueError(f"dp noise_multiplier (sigma) must be a finite number >= 0, got {noise_multiplier}")
    if not math.isfinite(max_grad_norm) or max_grad_norm <= 0:
        raise ValueError(f"dp max_grad_norm must be > 0, got {max_grad_norm}")
    if not 0.0 < sample_rate <= 1.0:
        raise ValueError(f"dp sample_rate must lie in (0, 1], got {sample_rate}")
    if expected_batch_size < 1:
        raise ValueError(f"dp expected_batch_size must be >= 1, got {expected_batch_size}")
    from opacus import GradSampleModule
    from opacus.accountants import RDPAccountant
    from opacus.optimizers import DPOptimizer
    from opacus.validators import ModuleValidator

    errors = ModuleValidator.validate(module, strict=False)
    if errors:
        raise ValueError(
            f"module {type(module).__name__} is not DP-compatible ({errors}); call make_module_private_compatible first"
        )
    private_module = GradSampleModule(module, batch_first=True, loss_reduction="mean")
    private_optimizer = DPOptimizer(
        optimizer,
        noise_multiplier=float(noise_multiplier),
        max_grad_norm=float(max_grad_norm),
        expected_batch_size=int(expected_batch_size),
        loss_reduction="mean",
    )
    accountant = accountant if accountant is not None else RDPAccountant()
    private_optimizer.attach_step_hook(accountant.get_optimizer_hook_fn(sample_rate=float(sample_rate)))
    return private_module, private_optimizer, accountant


def epsilon(accountant: RDPAccountant, delta: float) -> float:
    """The (epsilon, delta)-DP epsilon spent so far (RDP accountant); 0 before the first step and inf
    when any step used sigma = 0."""
    if not 0.0 < delta < 1.0:
        raise ValueError(f"delta must lie in (0, 1), got {delta}")
    if not accountant.history:
        return 0.0
    if any(noise_multiplier == 0 for noise_multiplier, _, _ in accountant.history):
        return math.inf
    return float(accountant.get_epsilon(delta=delta))


def default_delta(num_train: int) -> float:
    """delta = 1 / (training-set size), as issue 4 / paper 001 report it."""
    if num_train < 2:
        raise ValueError(f"need at least 2 training images for a DP delta of 1/n, got {num_train}")
    return 1.0 / num_train


def per_sample_mean(per_sample_losses: torch.Tensor) -> torch.Tensor:
    """Mean over the batch that stays finite (0, still attached to the graph) for an empty Poisson batch.

    per_sample_losses: float [B], B >= 0.
    """
    if per_sample_losses.ndim != 1:
        raise ValueError(f"per_sample_losses must be 1-d [B], got shape {tuple(per_sample_losses.shape)}")
    return per_sample_losses.sum() / max(len(per_sample_losses), 1)


@contextlib.contextmanager
def discriminator_hooks_disabled(private_module: GradSampleModule) -> Iterator[None]:
    """Stop recording per-sample gradients (e.g. while a GAN generator back-propagates through a private
    discriminator); the hooks are re-enabled on exit."""
    private_module.disable_hooks()
    try:
        yield
    finally:
        private_module.enable_hooks()
