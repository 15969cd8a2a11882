"""Synthetic-set specs checked against the real training split, and each seed's synthetic set.

Kinds (``medsyn.config.sections.SyntheticSet*``):

- ``generator``: a medsyn generator trained from scratch on the real training split once PER SEED (the seed
  drives its initial weights, batch order and sampling), so intervals include the training variance.
- ``checkpoint``: a trained medsyn generator (``load_generator``), sampled per seed.
- ``folder``: images made by any tool (``load_labelled_folder``); fixed, so seeds vary only the classifiers
  and the privacy draws.

A seed's synthetic set has ``multiplier`` x the real training split's per-class counts
(``medsyn.evaluation.synthetic_labels.labels_like``), sampled with seed + 1 (the fit uses seed).
Files of one (set, seed) live in its run folder: ``checkpoint.pt``, ``synthetic.npz`` (when saved) and the
ablated generators of the empirical-epsilon experiment.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medsyn.data.image_set import ImageSet
from medsyn.evaluation.sample_store import samples_into_store
from medsyn.evaluation.synthetic_labels import images_needed, labels_like
from medsyn.io.atomic import write_bytes_atomic

__all__ = ["SyntheticSource", "prepare_sources", "sample_for_seed", "save_synthetic_npz"]


@dataclass
class SyntheticSource:
    """A checked synthetic-set spec; ``fixed`` holds a folder's images, ``generator`` a loaded checkpoint,
    ``trained`` each seed's generator once sampled."""

    name: str
    kind: str
    spec: dict[str, Any]
    fixed: ImageSet | None = None
    generator: Any = None
    trained: dict[int, Any] = field(default_factory=dict)

    def build_generator(self, train: ImageSet) -> Any:
        """A fresh, untrained generator of this ``generator``-kind spec for ``train``'s classes and shape."""
        from medsyn.models.registry import build_generator

        return build_generator(self.spec["model"], num_classes=train.num_classes, image_shape=train.image_shape,
                               **dict(self.spec.get("config") or {}))


def prepare_sources(synthetic_sets: Mapping[str, Mapping[str, Any]], train: ImageSet,
                    max_multiplier: int) -> list[SyntheticSource]:
    """Check every spec (parsed by ``parse_synthetic_sets``) against the real training split; nothing trains."""
    from medsyn.data.labelled_folder import load_labelled_folder
    from medsyn.models.registry import load_generator

    sources = []
    for name, spec in synthetic_sets.items():
        where = f"synthetic_sets[{name!r}]"
        source = SyntheticSource(name=str(name), kind=spec["kind"], spec=dict(spec))
        if source.kind == "generator":
            source.build_generator(train)  # the model config against the data's classes and image size
        elif source.kind == "checkpoint":
            if not Path(spec["path"]).is_file():
                raise FileNotFoundError(f"{where}: generator checkpoint not found: {spec['path']}")
            generator = load_generator(spec["path"])
            if generator.num_classes != train.num_classes or tuple(generator.image_shape) != train.image_shape:
                raise ValueError(
                    f"{where}: checkpoint {spec['path']} makes {generator.num_classes} classes of (C,H,W)="
                    f"{tuple(generator.image_shape)} but the real data has {train.num_classes} classes of "
                    f"{train.image_shape}"
                )
            source.generator = generator
        else:
            folder = load_labelled_folder(spec["path"], spec["labels_csv"], class_names=train.class_names,
                                          image_shape=train.image_shape,
                                          allow_outside_root=spec.get("allow_outside_root", False) is True,
                                          store=spec.get("store", False) is True, cache_dir=spec.get("cache_dir"))
            _check_folder_size(where, spec["path"], folder, train, max_multiplier)
            source.fixed = folder
        sources.append(source)
    return sources


def _check_folder_size(where: str, path: str, folder: ImageSet, train: ImageSet, max_multiplier: int) -> None:
    needed = images_needed(train.class_counts(), max_multiplier)
    have = folder.class_counts()
    short = [f"{train.class_names[c]!r}: {have[c]} < {needed[c]}" for c in range(train.num_classes) if have[c] < needed[c]]
    if short:
        raise ValueError(
            f"{where}: folder {path} has too few images for the {max_multiplier}x regimes: it needs "
            f"{sum(needed)} images ({max_multiplier} x the {len(train)} real training images, per class as "
            f"in the real training split {train.class_counts()}); short in " + ", ".join(short)
        )


def sample_for_seed(source: SyntheticSource, train: ImageSet, seed: int, multiplier: int, run_dir: Path, *,
                    progress: bool, save: bool = False) -> ImageSet:
    """This seed's synthetic set: a folder's images, or ``multiplier`` x the real per-class counts sampled from
    the seed's generator (trained into ``run_dir / "checkpoint.pt"`` for kind generator, resuming if there);
    with stored real data (and no ``save``) the samples go to an image store (``sample_store``)."""
    if source.kind == "folder":
        return source.fixed  # type: ignore[return-value]
    if source.kind == "generator":
        generator = source.build_generator(train)
        generator.fit(train, run_dir / "checkpoint.pt", seed=seed, progress=progress)
    else:
        generator = source.generator
    source.trained[seed] = generator
    labels = labels_like(train.class_counts(), multiplier)
    name = f"{source.name} seed {seed}"
    if train.stored and not save:  # large data: the samples go to a store, one chunk in memory
        checkpoint = run_dir / "checkpoint.pt" if source.kind == "generator" else Path(source.spec["path"])
        return samples_into_store(generator, labels, seed=seed + 1, train=train, run_dir=run_dir,
                                  checkpoint=checkpoint, name=name)
    images = generator.sample(labels, seed=seed + 1).float().clamp(0.0, 1.0).contiguous()
    if save:
        save_synthetic_npz(run_dir / "synthetic.npz", images, labels)
    return ImageSet(images, labels, train.class_names, name)


def save_synthetic_npz(path: Path, images: torch.Tensor, labels: torch.Tensor) -> Path:
    """images float32 [N,C,H,W] and labels int64 [N] -> a compressed ``.npz`` written atomically."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, images=images.numpy(), labels=labels.numpy())
    return write_bytes_atomic(path, buffer.getvalue())
