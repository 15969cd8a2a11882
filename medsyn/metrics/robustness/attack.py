"""DeepFool (Moosavi-Dezfooli et al., CVPR 2016), batched, and the robustness metric of paper 000 §4.1.5:
accuracy on DeepFool-perturbed real test images, 5 steps.

    adversarial = deepfool(model, images, labels, steps=5, num_classes=10)             # engine="auto"
    robustness = adversarial_accuracy(model, test_set, steps=5)                         # float in [0, 1]

Every step checks all images still being attacked with one forward pass, then, for the images still
correctly classified, takes the gradients of all K-1 logit gaps f_k - f_label for the whole batch at once
(images do not interact in an eval-mode network, so one backward pass of the batch gives every image its own
gradient). No Python loop over images. The gradients come from one of two engines (``engine=``, chosen by
``policy.resolve_engine``):
- "autograd" (the reference, ``autograd_engine``): any model; a gradient-free check pass, then one forward
  and K-1 backward passes per step;
- "sequential" (``sequential_engine``): ``nn.Sequential`` ReLU CNNs on the CPU (medsyn's small_cnn, cnn3,
  cnn4, VGG16): an explicit backward with compiled kernels, whose check forward pass is also the one the
  gradients use (one forward pass per step).
Both give the same numbers (to float rounding; tested). (A vmap'd ``torch.func.jacrev`` gives them too but
was ~3x slower on CPU.)

Semantics follow ``torchattacks.DeepFool`` (v3.5.1), the reference the tests check against:
- an image whose current prediction differs from its label is done and is not changed again (so images
  the model misclassifies from the start are returned untouched);
- each step moves an image to the linearised nearest decision boundary,
  ``x <- clamp(x + (1 + overshoot) * |f'_l| w'_l / ||w'_l||^2, 0, 1)``, with l the class minimising
  ``|f'_k| / ||w'_k||`` (f'_k = f_k - f_label, w'_k its gradient); the overshoot scales each step, not the
  accumulated perturbation;
- images are clamped to [0, 1] after every step (torchattacks does this silently; here it is the
  ``clamp`` argument, default (0, 1), i.e. the valid range of medsyn images);
- after ``steps`` updates, no further check: the last update is kept.
One difference: a zero gradient difference ||w'_k|| = 0 gives NaN in torchattacks; here the norm is
floored at 1e-12, so such a class is never the nearest boundary and a fully flat image is left unchanged.

``adversarial_accuracy`` runs in float64 by default (``dtype=torch.float32`` gives torchattacks' arithmetic):
many adversarial images end within rounding of a decision boundary, and float32 rounding then moves the
metric by several percentage points (see its docstring).
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from medsyn.data.image_set import ImageSet
from medsyn.metrics.robustness.autograd_engine import logit_gap_gradients, other_classes
from medsyn.metrics.robustness.policy import attack_device, check_engine, resolve_engine
from medsyn.metrics.robustness.sequential_engine import SequentialGapGradients

__all__ = [
    "ATTACK_GRADIENT_BYTES", "DEEPFOOL_OVERSHOOT", "DEEPFOOL_STEPS", "ROBUSTNESS_DTYPE", "adversarial_accuracies",
    "adversarial_accuracy",
    "attack_batch_size", "deepfool",
]

# Paper 000 §4.1.5: "a fixed number of five iterations"; overshoot 0.02: DeepFool's and torchattacks' default.
DEEPFOOL_STEPS = 5
DEEPFOOL_OVERSHOOT = 0.02
# Precision of adversarial_accuracy (see its docstring for why it is not float32).
ROBUSTNESS_DTYPE = torch.float64
_NORM_FLOOR = 1e-12
_ATTACK_BATCH = 256
# adversarial_accuracy's default batch holds at most this many bytes of per-class gradients
# (batch x K x C x H x W values): 256 digits at 32 px take 20 MB, but 256 RGB images at 256 px with K = 8
# would take 3.2 GB in float64, so large images are attacked in smaller batches.
ATTACK_GRADIENT_BYTES = 512 << 20


def _deepfool_step(
    labels: torch.Tensor, logits: torch.Tensor, gap_gradients: torch.Tensor, overshoot: float
) -> torch.Tensor:
    """One DeepFool update of every image (all still correctly classified) -> perturbation [N,C,H,W].

    logits [N, K]; gap_gradients [N, K-1, C, H, W]: w'_k = d(f_k - f_label)/dx for k in other_classes.
    """
    count = logits.shape[0]
    rows = torch.arange(count, device=logits.device)
    targets = other_classes(labels, logits.shape[1])  # [N, K-1]
    logit_gap = logits.gather(1, targets) - logits[rows, labels][:, None]  # f'_k  [N, K-1]
    gap_norm = gap_gradients.flatten(2).norm(dim=2).clamp_min(_NORM_FLOOR)  # ||w'_k||  [N, K-1]
    nearest = (logit_gap.abs() / gap_norm).argmin(dim=1)  # l  [N]
    scale = logit_gap[rows, nearest].abs() / gap_norm[rows, nearest] ** 2
    return (1 + overshoot) * scale.view(count, 1, 1, 1) * gap_gradients[rows, nearest]


def _check_model_and_images(model: nn.Module, images: torch.Tensor, name: str) -> None:
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or not images.dtype.is_floating_point:
        raise ValueError(f"{name} must be a float tensor [N,C,H,W], got {images!r:.80}")
    if images.shape[0] == 0:
        raise ValueError(f"{name} is empty (0 images)")
    if not torch.isfinite(images).all():
        raise ValueError(f"{name} contains NaN or inf")
    check_model_matches_images(model, images, name)


def check_model_matches_images(model: nn.Module, images: torch.Tensor, name: str) -> None:
    """ValueError naming both when the model's floating-point parameters/buffers and ``images`` differ in
    dtype or device (torch would fail deep inside a layer, or silently copy across devices)."""
    tensors = [t for t in (*model.parameters(), *model.buffers()) if t.is_floating_point()]
    dtypes = sorted({str(t.dtype) for t in tensors})
    devices = sorted({str(t.device) for t in tensors})
    if dtypes and str(images.dtype) not in dtypes:
        raise ValueError(
            f"model parameters are {', '.join(dtypes)} but {name} are {images.dtype}: convert one to the other "
            f"(model.to({images.dtype}) or {name}.to({dtypes[0]}))"
        )
    if devices and str(images.device) not in devices:
        raise ValueError(
            f"model parameters are on {', '.join(devices)} but {name} are on {images.device}: move one to the other"
        )


def deepfool(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor | None = None,
    *,
    steps: int = DEEPFOOL_STEPS,
    overshoot: float = DEEPFOOL_OVERSHOOT,
    num_classes: int | None = None,
    clamp: tuple[float, float] | None = (0.0, 1.0),
    batch_size: int = _ATTACK_BATCH,
    engine: str = "auto",
) -> torch.Tensor:
    """DeepFool adversarial images, batched.

    model: maps float [N,C,H,W] -> logits [N,K]; attacked in eval mode (its mode is restored afterwards).
    images: float [N,C,H,W] in ``clamp`` range, of the dtype and on the device of the model's parameters
    (a mismatch is a ValueError naming both); labels: int64 [N] in [0,K) (None: the model's predictions,
    as in the original DeepFool). A model with fewer than 2 logits is refused (ValueError). num_classes: K, checked against the model output when given.
    clamp: (low, high) applied after every step, or None for no clamping.
    batch_size: images attacked together (memory is ~ batch_size x K x C x H x W floats for the Jacobian).
    engine: "auto" (default: the sequential engine where ``policy`` says it can run and pays, else autograd),
    "autograd" (the reference: plain torch autograd, any model, device and dtype) or "sequential" (the
    accelerator; ValueError saying why when it cannot run the model). ``policy.resolve_engine(model, images,
    engine)`` names the engine this call runs.
    Returns adversarial images, float [N,C,H,W], same dtype and device as ``images``.
    """
    check_engine(engine)
    _check_model_and_images(model, images, "images")
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if not isinstance(overshoot, (int, float)) or not overshoot >= 0:
        raise ValueError(f"overshoot must be a number >= 0, got {overshoot!r}")
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if clamp is not None:
        low, high = clamp
        if not low < high:
            raise ValueError(f"clamp must be (low, high) with low < high, got {clamp!r}")
        if images.min() < low or images.max() > high:
            raise ValueError(
                f"images must lie in clamp={clamp}, got [{images.min():.4g}, {images.max():.4g}]"
            )

    if labels is not None and (
        not isinstance(labels, torch.Tensor) or labels.shape != (len(images),) or labels.dtype.is_floating_point
    ):
        raise ValueError(f"labels must be an integer tensor [N={len(images)}], got {labels!r:.80}")

    resolved = resolve_engine(model, images, engine)
    # Under "auto" the autograd engine also takes the column-gradient kernel where policy says it pays (as
    # DeepFool always did before engine= existed); "autograd" itself is the plain reference.
    column_gradient = engine == "auto"
    was_training = model.training
    model.eval()  # batch statistics or dropout would make images interact and the attack random
    try:
        device = attack_device(model)
        plan = SequentialGapGradients.from_model(model) if resolved == "sequential" else None
        adversarial = images.detach().to(device).clone()
        for start in range(0, len(images), batch_size):
            chunk = slice(start, start + batch_size)
            if plan is not None:
                logits, tape = plan.forward(adversarial[chunk])
            else:
                with torch.no_grad():
                    logits, tape = model(adversarial[chunk]), None
            if start == 0:
                labels = _checked_labels(logits, labels, num_classes, device)
            chunk_labels = logits.argmax(dim=1) if labels is None else labels[chunk]
            if plan is None:
                _attack_chunk_autograd(
                    model, adversarial, chunk, chunk_labels, logits, steps, overshoot, clamp, column_gradient
                )
            else:
                _attack_chunk_sequential(plan, adversarial, chunk, chunk_labels, logits, tape, steps, overshoot, clamp)
    finally:
        model.train(was_training)
    return adversarial.to(device=images.device, dtype=images.dtype)


def _checked_labels(logits, labels, num_classes, device):
    """labels as int64 on ``device`` (None stays None: each chunk's predictions), checked against the
    model's first logits [n, K]."""
    if logits.ndim != 2:
        raise ValueError(f"model must output logits [N, K], got shape {tuple(logits.shape)}")
    model_classes = logits.shape[1]
    if model_classes < 2:
        raise ValueError(
            f"deepfool needs a model with at least 2 logits [N, K >= 2] (it moves images to the nearest boundary "
            f"between two classes), but the model outputs {model_classes}; for a one-logit binary classifier z, "
            "attack a wrapper that outputs the logits [0, z] (softmax([0, z]) = [1 - sigmoid(z), sigmoid(z)])"
        )
    if num_classes is not None and num_classes != model_classes:
        raise ValueError(f"num_classes={num_classes} but the model outputs {model_classes} logits")
    if labels is None:
        return None
    labels = labels.to(device=device, dtype=torch.int64)
    if labels.min() < 0 or labels.max() >= model_classes:
        raise ValueError(f"labels must lie in [0, {model_classes}), got [{int(labels.min())}, {int(labels.max())}]")
    return labels


def _attack_chunk_sequential(plan, adversarial, chunk, labels, logits, tape, steps, overshoot, clamp) -> None:
    """Attack ``adversarial[chunk]`` in place with the sequential engine; ``logits`` are the model's logits on
    it before step 1 and ``tape`` the plan's record of that forward pass."""
    # One forward pass per step: its logits decide which images are still correct (torchattacks checks the
    # prediction at the start of each step: fooled or initially misclassified images are left as they are),
    # and its tape serves the batched backward of their K-1 logit gaps.
    index = torch.arange(adversarial.shape[0], device=adversarial.device)[chunk]
    active_labels, step_logits = labels, logits
    for step in range(steps):
        keep = step_logits.argmax(dim=1) == active_labels
        if not keep.all():
            index, active_labels, step_logits, tape = (
                index[keep], active_labels[keep], step_logits[keep], tape.select(keep)
            )
        if len(index) == 0:
            return
        gap_gradients = plan.gap_gradients(tape, active_labels, logits.shape[1])
        moved = adversarial[index] + _deepfool_step(active_labels, step_logits, gap_gradients, overshoot)
        if clamp is not None:
            moved = moved.clamp(clamp[0], clamp[1])
        adversarial[index] = moved
        if step + 1 < steps:  # after the last update there is no further check
            step_logits, tape = plan.forward(moved)


def _attack_chunk_autograd(
    model, adversarial, chunk, labels, logits, steps, overshoot, clamp, column_gradient
) -> None:
    """Attack ``adversarial[chunk]`` in place with the autograd engine (any model); ``logits`` are the model's
    logits on it before step 1. Each check is a gradient-free forward pass."""
    positions = torch.arange(adversarial.shape[0], device=adversarial.device)[chunk]
    # torchattacks checks the prediction at the start of each step: fooled (or initially misclassified)
    # images are left as they are, and the gradients are taken only for images still correctly classified.
    correct = logits.argmax(dim=1) == labels
    for step in range(steps):
        if not correct.any():
            return
        index = positions[correct]
        current = adversarial[index]
        step_logits, gap_gradients = logit_gap_gradients(
            model, current, labels[correct], column_gradient=column_gradient
        )
        moved = current + _deepfool_step(labels[correct], step_logits, gap_gradients, overshoot)
        if clamp is not None:
            moved = moved.clamp(clamp[0], clamp[1])
        adversarial[index] = moved
        if step + 1 < steps:  # after the last update there is no further check
            with torch.no_grad():
                still_correct = model(moved).argmax(dim=1) == labels[correct]
            next_correct = correct.clone()
            next_correct[correct] = still_correct
            correct = next_correct


def attack_batch_size(num_classes: int, image_shape: tuple[int, int, int], dtype: torch.dtype) -> int:
    """The default DeepFool batch of ``adversarial_accuracy``: 256 images, or as many as keep the per-class
    gradients (K x C x H x W values an image) within ``ATTACK_GRADIENT_BYTES``, at least 1."""
    per_image = num_classes * math.prod(image_shape) * torch.empty(0, dtype=dtype).element_size()
    return max(1, min(_ATTACK_BATCH, ATTACK_GRADIENT_BYTES // per_image))


def adversarial_accuracy(
    model: nn.Module,
    test: ImageSet,
    steps: int = DEEPFOOL_STEPS,
    *,
    overshoot: float = DEEPFOOL_OVERSHOOT,
    batch_size: int | None = None,
    dtype: torch.dtype = ROBUSTNESS_DTYPE,
    engine: str = "auto",
    top_k: int = 1,
) -> float:
    """Top-``top_k`` accuracy in [0,1] of ``model`` on DeepFool-perturbed ``test`` images (``steps`` steps).

    top_k: an attacked image counts as robust when its true class is among the ``top_k`` largest logits of the
    adversarial image (1: the prediction is still right; paper 000 reports top-3 for CheXpert, §5.2). The attack
    itself is DeepFool's as always: it stops at the first top-1 misclassification.

    dtype: precision of the attack and of the final prediction. The default float64 runs on a float64 copy of
    the model (``model`` itself is untouched); ``torch.float32`` reproduces torchattacks' arithmetic. Why the
    default is float64: after 5 clamped steps about half of the images sit within 1e-4 logits of a decision
    boundary (measured on digits classifiers), so in float32 rounding decides their class and the metric
    moved by 7-13 percentage points between float32 and float64 (and would move with batch size or BLAS).
    engine: as in ``deepfool`` ("auto", "autograd" or "sequential").
    batch_size: test images attacked together; None: 256, or fewer where their per-class gradients would
    exceed ``ATTACK_GRADIENT_BYTES`` (:func:`attack_batch_size`). Memory does not grow with the test set.
    """
    return adversarial_accuracies(model, test, steps, overshoot=overshoot, batch_size=batch_size, dtype=dtype,
                                  engine=engine, top_ks=(top_k,))[top_k]


def adversarial_accuracies(
    model: nn.Module,
    test: ImageSet,
    steps: int = DEEPFOOL_STEPS,
    *,
    overshoot: float = DEEPFOOL_OVERSHOOT,
    batch_size: int | None = None,
    dtype: torch.dtype = ROBUSTNESS_DTYPE,
    engine: str = "auto",
    top_ks: tuple[int, ...] = (1,),
) -> dict[int, float]:
    """{k: top-k adversarial accuracy} for every k of ``top_ks`` from ONE DeepFool attack of ``test`` (the
    arguments as in ``adversarial_accuracy``; each k an integer in [1, number of classes])."""
    check_engine(engine)
    if not isinstance(test, ImageSet):
        raise ValueError(f"test must be an ImageSet, got {type(test).__name__}")
    if len(test) == 0:
        raise ValueError(f"test ({test.source}) is empty")
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype!r}")
    if isinstance(top_ks, (str, bytes)) or not isinstance(top_ks, (tuple, list)) or not top_ks:
        raise ValueError(f"top_ks must be a non-empty tuple of integers, got {top_ks!r}")
    for top_k in top_ks:
        if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= test.num_classes:
            raise ValueError(
                f"top_k must be an integer in [1, {test.num_classes}] (the number of classes), got {top_k!r}")
    if batch_size is None:
        batch_size = attack_batch_size(test.num_classes, test.image_shape, dtype)
    attacked = model
    if any(tensor.dtype != dtype for tensor in model.state_dict().values() if tensor.dtype.is_floating_point):
        attacked = copy.deepcopy(model).to(dtype)
    device = attack_device(attacked)  # deepfool refuses a device mismatch
    was_training = attacked.training
    largest = max(top_ks)
    # per test image: the predicted class and the indices of the ``largest`` largest adversarial logits
    predictions, ranks = [], []
    try:
        # one block of ``batch_size`` test images at a time, so memory does not grow with the test set; deepfool
        # batches by ``batch_size`` from the first image, so the blocks are the batches it would form itself
        for start in range(0, len(test), batch_size):
            block = test.images[start:start + batch_size].to(device=device, dtype=dtype)
            adversarial = deepfool(attacked, block, test.labels[start:start + batch_size], steps=steps,
                                   overshoot=overshoot, num_classes=test.num_classes, batch_size=batch_size,
                                   engine=engine)
            attacked.eval()
            with torch.no_grad():
                logits = attacked(adversarial.to(device))
            predictions.append(logits.argmax(dim=1).cpu())
            ranks.append(logits.topk(largest, dim=1).indices.cpu())
    finally:
        attacked.train(was_training)
    # top-1 is the argmax (the first maximum, as the prediction always was); top-k the set of k largest logits
    hits = torch.cat(ranks) == test.labels[:, None]
    correct = torch.cat(predictions) == test.labels
    return {top_k: float((correct if top_k == 1 else hits[:, :top_k].any(dim=1)).double().mean().item())
            for top_k in top_ks}
