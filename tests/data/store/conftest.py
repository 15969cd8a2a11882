"""A tiny source for the image store tests: 16x16 RGB uint8 images saved as .npy files under
``root/<class>/<name>.npy``, with a decode callable that counts its calls."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from medsyn.data.store import StoreBuild, build_store

KIND = "fake_folder"
SIZE = 16


class FakeSource:
    """``count`` images alternating between two classes; ``build()`` builds their store in ``cache``."""

    def __init__(self, root: Path, cache: Path, count: int = 10, names: tuple[str, str] = ("benign", "malignant")):
        self.root, self.cache = root, cache
        self.class_names = names
        self.decode_calls = 0
        self.transform: Callable[[np.ndarray], np.ndarray] = lambda values: values
        rng = np.random.default_rng(0)
        self.files: list[Path] = []
        self.labels: list[int] = []
        for index in range(count):
            self.add(rng.integers(0, 256, size=(3, SIZE, SIZE), dtype=np.uint8), index % 2, f"img_{index:03d}.npy")

    def add(self, pixels: np.ndarray, label: int, name: str) -> Path:
        path = self.root / self.class_names[label] / name
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, pixels)
        self.files.append(path)
        self.labels.append(label)
        return path

    def rewrite(self, index: int, pixels: np.ndarray) -> None:
        """New pixels for file ``index``, with a later mtime even on a coarse clock."""
        before = self.files[index].stat().st_mtime_ns
        np.save(self.files[index], pixels)
        os.utime(self.files[index], ns=(before + 10**9, before + 10**9))

    def remove(self, index: int) -> None:
        self.files.pop(index).unlink()
        self.labels.pop(index)

    def decoded(self, index: int) -> np.ndarray:
        """Item ``index`` as the decoder returns it (float32 [3, 16, 16] in [0, 1]), without counting."""
        return self.transform(np.load(self.files[index]).astype(np.float32) / 255)

    def decode(self, index: int) -> np.ndarray:
        self.decode_calls += 1
        return self.decoded(index)

    def build(self, **overrides) -> StoreBuild:
        arguments = {
            "kind": KIND, "root": self.root, "files": list(self.files), "labels": list(self.labels),
            "class_names": self.class_names, "image_shape": (3, SIZE, SIZE), "decode": self.decode,
            "options": {"size": SIZE, "channels": 3}, "cache_dir": self.cache, "chunk_size": 4,
        }
        return build_store(**{**arguments, **overrides})


@pytest.fixture
def source(tmp_path: Path) -> FakeSource:
    return FakeSource(tmp_path / "source", tmp_path / "cache")


@pytest.fixture
def make_source() -> Callable[..., FakeSource]:
    """FakeSource(root, cache, count=..., names=...) for tests that need their own root or several sources."""
    return FakeSource
