"""The autograd engine, DeepFool's reference: gradients of a classifier's logit gaps with respect to its input
images, for the whole batch at once, by torch autograd. Any model, any device, any floating dtype.

    logits, gaps = logit_gap_gradients(model, images, labels)
    # logits [N, K]; gaps [N, K-1, C, H, W]: d(f_k - f_label)/dx for every class k != label (ascending k)

One forward pass and K-1 backward passes of the whole batch: pass j seeds every image n with
e_{k_j(n)} - e_{label(n)}, where k_j(n) is the j-th class other than label(n). DeepFool only uses the gaps,
so K-1 passes suffice (one pass for a binary classifier instead of the textbook two). Weights are detached,
so autograd skips every weight-gradient path (the numbers are those of a plain ``model(images)`` backward).
``column_gradient=True`` (what ``engine="auto"`` uses) runs the model under
``column_gradient.column_gradient_kernels()``: the same logits, and the input gradients of image-facing
float32 CPU convolutions by GEMM + col2im (equal to float rounding).
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from medsyn.metrics.robustness.column_gradient import column_gradient_kernels

__all__ = ["logit_gap_gradients", "other_classes"]


def other_classes(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """int64 [N, K-1]: for each image the classes other than its label, ascending."""
    classes = torch.arange(num_classes, device=labels.device).expand(len(labels), num_classes)
    return classes[classes != labels[:, None]].view(len(labels), num_classes - 1)


def logit_gap_gradients(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, *, column_gradient: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits [N, K] of ``images`` [N,C,H,W] and gradients [N, K-1, C, H, W] of f_k - f_label for the
    classes ``other_classes(labels, K)``. ``model`` must be in eval mode (images must not interact).
    column_gradient: take ``column_gradient_kernels()`` where ``policy.column_gradient_pays`` (False: plain
    autograd, the reference)."""
    images = images.detach().requires_grad_(True)
    weights = {name: tensor.detach() for name, tensor in model.state_dict(keep_vars=True).items()}
    kernels = column_gradient_kernels() if column_gradient else contextlib.nullcontext()
    with torch.enable_grad(), kernels:
        logits = torch.func.functional_call(model, weights, (images,))
        num_classes = logits.shape[1]
        if num_classes < 2:
            raise ValueError(f"model must output at least 2 logits, got {num_classes}")
        targets = other_classes(labels, num_classes)
        rows = torch.arange(len(images), device=images.device)
        gradients = []
        for j in range(num_classes - 1):
            seed = torch.zeros_like(logits)
            seed[rows, targets[:, j]] = 1
            seed[rows, labels] = -1
            gradients.append(
                torch.autograd.grad(logits, images, seed, retain_graph=j + 2 < num_classes)[0]
            )
    return logits.detach(), torch.stack(gradients, dim=1)
