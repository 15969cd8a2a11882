"""Workflow: sample N images per class from a trained generator and write them to disk.

This is the ``_target_`` every generator bundle's ``configs/inference.yaml`` calls:

    generate_images(output_dir="runs/cvae", checkpoint=None, per_class=10, seed=0, out_dir=None)

Reads ``output_dir/checkpoint.pt`` unless ``checkpoint`` names another file. Writes ``out_dir``
(default ``output_dir/synthetic``) as a class-per-folder image set plus an archive:

    <out_dir>/<class name>/<index:05d>.png     8-bit grey (C=1) or RGB (C=3) PNGs
    <out_dir>/synthetic.npz                    images float32 [N,C,H,W] in [0,1], labels int64 [N],
                                               class_names str [K]

``out_dir`` is claimed first (medsyn.io.output_folder): it must be new, empty or a folder generate_images
wrote (a study folder or a training run's folder is refused before anything is written), and one run at a
time writes it. The new set is built in a scratch folder inside ``out_dir`` and moved into place when
complete; only the entries the previous run recorded are removed.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from medsyn.config.strict import strict_arguments
from medsyn.data.safe_names import class_folder_name, class_folder_names
from medsyn.evaluation.generator_runs import CHECKPOINT_NAME
from medsyn.io.atomic import write_bytes_atomic
from medsyn.io.output_folder import OutputFolder, check_output_folder, claim_output_folder
from medsyn.models.per_class_sampling import class_names_of, sample_per_class
from medsyn.models.registry import load_generator

__all__ = ["ARCHIVE_NAME", "class_folder_name", "generate_images"]

ARCHIVE_NAME = "synthetic.npz"


def _png_bytes(image: torch.Tensor) -> bytes:
    """image: float [C,H,W] in [0,1], C in {1, 3} -> PNG bytes (values rounded to 8 bits)."""
    from PIL import Image

    pixels = (image.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    if pixels.shape[0] == 1:
        picture = Image.fromarray(pixels[0], mode="L")
    elif pixels.shape[0] == 3:
        picture = Image.fromarray(np.moveaxis(pixels, 0, -1), mode="RGB")
    else:
        raise ValueError(f"PNG output needs 1 or 3 channels, the generator makes {pixels.shape[0]}")
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


@strict_arguments
def generate_images(
    output_dir: str | Path,
    *,
    checkpoint: str | Path | None = None,
    per_class: int,
    seed: int = 0,
    out_dir: str | Path | None = None,
    sampling: Mapping[str, Any] | None = None,
) -> Path:
    """Sample ``per_class`` images of every class (classes in index order) and write them; return out_dir.

    sampling: keyword overrides for the model's ``sample`` (e.g. diffusion ``{"sampler": "ddim",
    "sampling_steps": 50, "guidance_scale": 2.0}``, StyleGAN2 ``{"truncation_psi": 0.7}``); None = the
    settings stored with the checkpoint.
    """
    if not isinstance(per_class, int) or isinstance(per_class, bool) or per_class < 1:
        raise ValueError(f"per_class must be a positive integer, got {per_class!r}")
    out_dir = Path(out_dir) if out_dir is not None else Path(output_dir) / "synthetic"
    check_output_folder(out_dir, writer="generate_images", what="out_dir")  # refuse before loading the model
    checkpoint_path = Path(checkpoint) if checkpoint is not None else Path(output_dir) / CHECKPOINT_NAME
    if not checkpoint_path.is_file():
        raise FileNotFoundError(
            f"checkpoint {checkpoint_path} does not exist (train first, or pass checkpoint=<file>)"
        )
    with claim_output_folder(out_dir, writer="generate_images", what="out_dir") as folder:
        generator = load_generator(checkpoint_path)
        class_names = class_names_of(generator, checkpoint_path)
        folders = class_folder_names(class_names)  # no separators, "..", leading dot; clashes refused
        images, labels = sample_per_class(generator, per_class, seed, sampling)
        _write_set(folder, images, labels, folders, class_names)
    return out_dir


def _write_set(
    folder: OutputFolder, images: torch.Tensor, labels: torch.Tensor, folders: list[str], class_names: list[str]
) -> None:
    """PNGs per class folder and the archive into a scratch folder of ``folder``, then moved into place."""
    staging = folder.scratch_folder()
    try:
        counters = [0] * len(folders)
        written = zip(images, labels.tolist())
        for image, label in tqdm(
            written, total=len(labels), desc="write PNGs", leave=False, disable=len(labels) < 500
        ):
            path = staging / folders[label] / f"{counters[label]:05d}.png"
            counters[label] += 1
            write_bytes_atomic(path, _png_bytes(image))
        buffer = io.BytesIO()
        np.savez(
            buffer,
            images=images.numpy(),
            labels=labels.numpy(),
            class_names=np.asarray(class_names),
        )
        write_bytes_atomic(staging / ARCHIVE_NAME, buffer.getvalue())
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    folder.replace_entries(staging)
