"""Shared by the generator bundle tests: run `python -m monai.bundle run` and check the synthetic folder
that an inference bundle writes (imported as a sibling module; pytest puts this folder on sys.path)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]


def run_bundle(*arguments: str) -> None:
    """`python -m monai.bundle run ARGUMENTS` from the repository root (1 torch thread); asserts success
    and shows the end of its output when it fails."""
    command = [sys.executable, "-m", "monai.bundle", "run", *arguments]
    result = subprocess.run(
        command,
        check=False,  # the return code is asserted below, with the output
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    output = f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{output}"


def assert_synthetic_folder(
    synthetic: Path, per_class: int, num_classes: int = 10, image_shape: tuple[int, int, int] = (1, 32, 32)
) -> None:
    """synthetic.npz holds per_class float32 images in [0, 1] per class, in class order, with the class
    names; every class folder holds the same images as 8-bit PNGs named 00000.png, 00001.png, ..."""
    archive = np.load(synthetic / "synthetic.npz")
    images = archive["images"]
    assert images.shape == (num_classes * per_class, *image_shape) and images.dtype == np.float32
    assert images.min() >= 0 and images.max() <= 1
    assert archive["labels"].tolist() == [c for c in range(num_classes) for _ in range(per_class)]
    assert archive["class_names"].tolist() == [str(c) for c in range(num_classes)]
    for class_index in range(num_classes):
        pngs = sorted((synthetic / str(class_index)).glob("*.png"))
        assert [p.name for p in pngs] == [f"{i:05d}.png" for i in range(per_class)]
        for i, png in enumerate(pngs):
            pixels = np.asarray(Image.open(png), dtype=np.float64) / 255
            np.testing.assert_allclose(pixels, images[class_index * per_class + i, 0], atol=0.5 / 255 + 1e-6)
