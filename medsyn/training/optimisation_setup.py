"""The one place a generator's trainable module becomes what its training step calls: private under
DP-SGD (Opacus, whole model), data-parallel under DDP, or itself.

    setup = prepare_optimisation(network, optimizer, training, num_train=len(train))
    setup.module(...)        # call this in the step; setup.optimizer.step()
    stateful.update(setup.stateful); metadata.update(setup.metadata); metadata_fn = setup.metadata_fn

Models that make only a part private (the StyleGAN2 discriminator) use ``medsyn.training.dp`` directly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from medsyn.training.distributed import wrap_data_parallel
from medsyn.training.dp import default_delta, epsilon, make_private
from medsyn.training.settings import TrainingSettings

__all__ = ["OptimisationSetup", "prepare_optimisation"]


@dataclass
class OptimisationSetup:
    """module / optimizer: what the training step uses; stateful: extra checkpoint entries (the private
    optimiser and the accountant under DP); metadata: ``{"dp": {...}}`` under DP; metadata_fn: the DP
    metadata with the current epsilon, for the checkpoint and the run summary (None without DP)."""

    module: nn.Module
    optimizer: torch.optim.Optimizer
    stateful: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    metadata_fn: Callable[[], dict[str, Any]] | None = None


def prepare_optimisation(
    network: nn.Module, optimizer: torch.optim.Optimizer, training: TrainingSettings, *, num_train: int
) -> OptimisationSetup:
    """DP-SGD (paper 001 §3.1) when ``training.dp`` is set: Poisson rate batch/n, delta = 1/n unless given."""
    if training.dp is None:
        return OptimisationSetup(wrap_data_parallel(network), optimizer)
    dp = training.dp
    sample_rate = min(1.0, training.batch_size / num_train)
    delta = dp.delta if dp.delta is not None else default_delta(num_train)
    private, private_optimizer, accountant = make_private(
        network,
        optimizer,
        noise_multiplier=dp.noise_multiplier,
        max_grad_norm=dp.max_grad_norm,
        sample_rate=sample_rate,
        expected_batch_size=max(1, round(sample_rate * num_train)),
    )
    dp_metadata = {
        "noise_multiplier": dp.noise_multiplier,
        "max_grad_norm": dp.max_grad_norm,
        "delta": delta,
        "sample_rate": sample_rate,
        "accountant": "rdp",
    }

    def metadata_fn() -> dict[str, Any]:
        return {"dp": {**dp_metadata, "epsilon": epsilon(accountant, delta)}}

    return OptimisationSetup(
        private,
        private_optimizer,
        stateful={"optimizer": private_optimizer, "accountant": accountant},
        metadata={"dp": dp_metadata},
        metadata_fn=metadata_fn,
    )
