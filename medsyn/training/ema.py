"""Exponential moving average of a module's parameters (StyleGAN2's G_ema, diffusion EMA weights).

Put the ``ExponentialMovingAverage`` in ``TrainingRun.stateful`` so it is checkpointed and resumed with
the model; sample from ``ema.module``.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

__all__ = ["ExponentialMovingAverage"]


class ExponentialMovingAverage:
    """ema <- decay * ema + (1 - decay) * param after every ``update``; buffers are copied as they are."""

    def __init__(self, module: nn.Module, decay: float) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must lie in [0, 1), got {decay}")
        self.decay = float(decay)
        self.module = copy.deepcopy(module).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        for average, current in zip(self.module.parameters(), module.parameters(), strict=True):
            average.lerp_(current.detach(), 1.0 - self.decay)
        for average, current in zip(self.module.buffers(), module.buffers(), strict=True):
            average.copy_(current)

    def state_dict(self) -> dict:
        return {"decay": self.decay, "module": self.module.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        if state["decay"] != self.decay:
            raise ValueError(
                f"EMA decay in checkpoint ({state['decay']}) differs from this run ({self.decay})"
            )
        self.module.load_state_dict(state["module"])
