"""Train and evaluate a downstream classifier (paper 000 §4.1.4, Appendix A).

    model, history = train_classifier(train, val, arch="cnn4", seed=0, augment=False)
    scores = evaluate_classifier(model, test)            # {"accuracy": ..., "macro_f1": ...}

Training is cross-entropy with Adam, ``epochs`` passes over a seeded shuffle, and the weights kept are those
of the epoch with the lowest loss on the REAL validation set (Appendix A); ties keep the earlier epoch.
Images are fed as they are, in [0, 1]: no normalisation, so no statistics of any split leak into training.
With ``augment=True`` every training batch is transformed on the fly by ``geometric_augment`` (the paper's
"Geometric DA": rotations, horizontal and vertical flips, ranges ``geometric_da``; ``models.geometric_augmentation``),
drawn from a generator seeded by ``seed``.
Batches are read through a DataLoader (``medsyn.training.batch_loader``): the shuffle is drawn here and
``num_workers`` processes only read the images, so the trained weights do not depend on ``num_workers``;
one worker pool serves every epoch. Augmentation runs in this process, on the CPU.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Iterator, Mapping
from contextlib import closing
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from medsyn.data.image_set import ImageSet, check_same_kind
from medsyn.models.classifiers import DEFAULT_CLASSIFIER, build_classifier, classifier_hyperparameters
from medsyn.models.geometric_augmentation import GeometricAugmentation, geometric_augment
from medsyn.training.batch_loader import DEFAULT_NUM_WORKERS, LoadedBatch, check_num_workers, load_batches

__all__ = [
    "evaluate_classifier",
    "macro_f1_score",
    "predict_logits",
    "top_k_key",
    "train_classifier",
]

_EVAL_BATCH = 256
# Offsets that keep the augmentation stream and the shuffle stream of one seed independent.
_AUGMENT_STREAM = 7_919


def _check_positive_int(value: Any, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def predict_logits(model: nn.Module, images: torch.Tensor, batch_size: int = _EVAL_BATCH) -> torch.Tensor:
    """Logits float [N, K] of ``model`` in eval mode (restored afterwards), in batches, without gradients."""
    device = next(iter(model.parameters()), torch.empty(0)).device
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            outputs = [
                model(images[start : start + batch_size].to(device)).float().cpu()
                for start in range(0, len(images), batch_size)
            ]
    finally:
        model.train(was_training)
    return torch.cat(outputs)


def _mean_loss(model: nn.Module, data: ImageSet) -> tuple[float, float]:
    logits = predict_logits(model, data.images)
    loss = F.cross_entropy(logits, data.labels, reduction="mean").item()
    accuracy = (logits.argmax(1) == data.labels).double().mean().item()
    return loss, accuracy


def train_classifier(
    train: ImageSet,
    val: ImageSet,
    *,
    arch: str = DEFAULT_CLASSIFIER,
    epochs: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    seed: int = 0,
    augment: bool = False,
    progress: bool = False,
    device: str | torch.device = "cpu",
    num_workers: int = DEFAULT_NUM_WORKERS,
    geometric_da: GeometricAugmentation | Mapping[str, float] | None = None,
) -> tuple[nn.Module, dict]:
    """Train ``arch`` on ``train``; keep the epoch with the lowest cross-entropy on ``val``.

    train, val: ImageSets with the same image shape and classes (val is REAL validation data, never test).
    epochs, batch_size, lr: default to ``CLASSIFIER_HYPERPARAMETERS[arch]`` (paper 000 Appendix A).
    num_workers: DataLoader worker processes reading the training batches (0: read in this process).
    geometric_da: the transforms' ranges with ``augment`` (a ``GeometricAugmentation`` or a mapping of its
    fields; None: its defaults); ignored without ``augment``.
    Returns the model (best epoch's weights, eval mode, on ``device``) and a JSON-serialisable history:
    {"arch", "seed", "augment", "geometric_da" (with augment), "epochs", "batch_size", "lr", "train_size",
     "best_epoch", "best_val_loss",
     "per_epoch": [{"epoch", "train_loss", "val_loss", "val_accuracy"}, ...]} (epochs count from 1).
    """
    epochs, batch_size, lr = _checked_training_arguments(
        train, val, arch, epochs, batch_size, lr, seed, augment
    )
    check_num_workers(num_workers)
    geometric = GeometricAugmentation.from_value(
        dict(geometric_da) if isinstance(geometric_da, Mapping) else geometric_da, "geometric_da")
    device = torch.device(device)
    model, dropout_seed = _seeded_classifier(arch, train, seed)
    model.to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=float(lr))
    shuffle = torch.Generator().manual_seed(seed)
    augmentation = torch.Generator().manual_seed(seed + _AUGMENT_STREAM) if augment else None

    per_epoch: list[dict] = []
    best_state, best_epoch, best_loss = None, 0, math.inf
    epoch_range = range(1, epochs + 1)
    if progress:
        from tqdm.auto import tqdm

        epoch_range = tqdm(epoch_range, desc=f"train {arch}", leave=False)
    batches_per_epoch = math.ceil(len(train) / batch_size)
    order = _epoch_batches(len(train), batch_size, shuffle, epochs)
    stream = load_batches(train.images, train.labels, order, num_workers=num_workers, device=device)
    with closing(stream), torch.random.fork_rng(devices=[]):  # dropout (vgg16) draws from the global RNG
        torch.manual_seed(dropout_seed)
        for epoch in epoch_range:
            epoch_batches = itertools.islice(stream, batches_per_epoch)
            train_loss = _train_one_epoch(model, optimiser, epoch_batches, len(train), augmentation, geometric,
                                          device)
            val_loss, val_accuracy = _mean_loss(model, val)
            if not math.isfinite(val_loss):
                raise ValueError(
                    f"training {arch} diverged at epoch {epoch}: validation loss {val_loss}; lower lr={lr}"
                )
            per_epoch.append(
                {"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss, "val_accuracy": val_accuracy}
            )
            if val_loss < best_loss:
                best_loss, best_epoch = val_loss, epoch
                best_state = copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    model.eval()
    history = {
        "arch": arch,
        "seed": seed,
        "augment": augment,
        **({"geometric_da": geometric.to_dict()} if augment else {}),
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": float(lr),
        "train_size": len(train),
        "best_epoch": best_epoch,
        "best_val_loss": best_loss,
        "per_epoch": per_epoch,
    }
    return model, history


def _checked_training_arguments(
    train: ImageSet,
    val: ImageSet,
    arch: str,
    epochs: int | None,
    batch_size: int | None,
    lr: float | None,
    seed: int,
    augment: bool,
) -> tuple[int, int, float]:
    """Validate ``train_classifier``'s arguments (ValueError names the bad one) and return (epochs,
    batch_size, lr) with the ones left None taken from ``arch``'s hyper-parameters."""
    if not isinstance(train, ImageSet):
        raise ValueError(f"train must be an ImageSet, got {type(train).__name__}")
    check_same_kind(train, val, reference_name="train", other_name="val")
    if len(train) == 0:
        raise ValueError(f"train ({train.source}) is empty")
    if len(val) == 0:
        raise ValueError(f"val ({val.source}) is empty: the best epoch is chosen by validation loss")
    hyper = classifier_hyperparameters(arch)
    epochs = _check_positive_int(hyper.epochs if epochs is None else epochs, "epochs")
    batch_size = _check_positive_int(hyper.batch_size if batch_size is None else batch_size, "batch_size")
    lr = hyper.lr if lr is None else lr
    if not isinstance(lr, (int, float)) or isinstance(lr, bool) or not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"lr must be a positive finite number, got {lr!r}")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if not isinstance(augment, bool):
        raise ValueError(f"augment must be a bool, got {augment!r}")
    return epochs, batch_size, lr


def _seeded_classifier(arch: str, train: ImageSet, seed: int) -> tuple[nn.Module, int]:
    """A fresh ``arch`` for ``train``'s classes and images, with initial weights from ``seed``, and the seed
    of its dropout stream drawn after them; the caller's RNG is left untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_classifier(arch, num_classes=train.num_classes, image_shape=train.image_shape)
        dropout_seed = int(torch.randint(0, 2**31 - 1, ()).item())
    return model, dropout_seed


def _epoch_batches(num_items: int, batch_size: int, shuffle: torch.Generator, epochs: int
                   ) -> Iterator[torch.Tensor]:
    """The indices of every batch of ``epochs`` passes: each pass a permutation drawn from ``shuffle``, cut
    into batches of ``batch_size`` (the last one shorter when ``batch_size`` does not divide ``num_items``)."""
    for _ in range(epochs):
        order = torch.randperm(num_items, generator=shuffle)
        for start in range(0, num_items, batch_size):
            yield order[start : start + batch_size]


def _train_one_epoch(
    model: nn.Module,
    optimiser: torch.optim.Optimizer,
    batches: Iterator[LoadedBatch],
    num_items: int,
    augmentation: torch.Generator | None,
    geometric: GeometricAugmentation,
    device: torch.device,
) -> float:
    """One pass over the ``num_items`` training images in ``batches``, one Adam step per batch (each batch
    transformed by ``geometric_augment`` with ranges ``geometric``, drawing from ``augmentation``, unless None);
    returns the mean
    training loss over the images."""
    model.train()
    total_loss = 0.0
    for batch in batches:
        if augmentation is not None:
            batch = batch._replace(images=geometric_augment(batch.images, augmentation, geometric))
        images, labels = batch.images_and_labels(device)
        logits = model(images)
        loss = F.cross_entropy(logits, labels)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        total_loss += loss.item() * len(batch.index)
    return total_loss / num_items


def macro_f1_score(labels: torch.Tensor, predictions: torch.Tensor) -> float:
    """Unweighted mean of per-class F1 over the classes present in ``labels`` or ``predictions``
    (scikit-learn's ``f1_score(average="macro")`` convention; a class with no true and no predicted
    positives is skipped, an undefined precision or recall counts as 0)."""
    labels = labels.long().cpu()
    predictions = predictions.long().cpu()
    classes = torch.unique(torch.cat([labels, predictions]))
    scores = []
    for cls in classes:
        true_positive = ((predictions == cls) & (labels == cls)).sum().item()
        false_positive = ((predictions == cls) & (labels != cls)).sum().item()
        false_negative = ((predictions != cls) & (labels == cls)).sum().item()
        # F1 = 2TP / (2TP + FP + FN): equals 2PR/(P+R) and is 0 when TP = 0.
        scores.append(2 * true_positive / (2 * true_positive + false_positive + false_negative))
    return float(sum(scores) / len(scores))


def top_k_key(metric: str, top_k: int) -> str:
    """The result name of a metric scored top-``top_k``: "accuracy" -> "top3_accuracy" (1: the name unchanged)."""
    return metric if top_k == 1 else f"top{top_k}_{metric}"


def evaluate_classifier(model: nn.Module, test: ImageSet, top_k: int = 1) -> dict[str, float]:
    """Scores on ``test``, in [0,1]: {"accuracy": top-1 accuracy, "macro_f1": top-1 macro F1} and, when
    ``top_k`` > 1, "top{k}_accuracy" (the true class among the k largest logits; paper 000 §5.2, CheXpert)."""
    if not isinstance(test, ImageSet):
        raise ValueError(f"test must be an ImageSet, got {type(test).__name__}")
    if len(test) == 0:
        raise ValueError(f"test ({test.source}) is empty")
    _check_positive_int(top_k, "top_k")
    if top_k > test.num_classes:
        raise ValueError(f"top_k={top_k} exceeds the number of classes ({test.num_classes})")
    logits = predict_logits(model, test.images)
    if logits.ndim != 2 or logits.shape[1] != test.num_classes:
        raise ValueError(
            f"model outputs logits of shape {tuple(logits.shape)} but test ({test.source}) has "
            f"{test.num_classes} classes"
        )
    predictions = logits.argmax(dim=1)
    scores = {"accuracy": float((predictions == test.labels).double().mean().item()),
              "macro_f1": macro_f1_score(test.labels, predictions)}
    if top_k > 1:
        top = logits.topk(top_k, dim=1).indices
        scores[top_k_key("accuracy", top_k)] = float((top == test.labels[:, None]).any(dim=1).double().mean().item())
    return scores
