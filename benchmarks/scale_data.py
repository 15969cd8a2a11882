"""Seeded, cached stand-ins for the papers' data sets, for ``bench_scale.py``.

    spec = DataSetSpec("kvasir_like", count=8000, classes=8, size=256, synthetic_multiplier=3)
    paths = ensure_data_set(spec, Path("benchmarks/.scale_runs/cache/data"))
    paths.real        # <folder>/real/<class>/<index>.png       (count images, classes round-robin)
    paths.synthetic   # <folder>/synthetic/<class>_<index>.png  (count x synthetic_multiplier images)
    paths.labels_csv  # <folder>/synthetic/labels.csv           (header "filename,label", label = class name)

Every image is an RGB PNG (Pillow, compress level 1) drawn by numpy from its own seeded Generator
(``default_rng([seed, set, index])``: the same spec gives the same bytes, in any order and worker count):
a smooth random colour field around a class colour, a class-dependent shape (disc, square, ring,
triangle, stripes, cross, ellipse or diamond, with a second class colour; classes past the 8th differ
by colours) at a random place and size, and uniform pixel noise. The synthetic images use the same
classes with a blurrier field and more noise. They are cheap to make (~15 ms each at 256 px, two thirds
of it the PNG encoder; ``--workers`` to spread them) but not trivial to compress (~145 KB each at 256 px),
classify or match.

A data set is built into a hidden temporary folder next to its final one and renamed into place only
when complete (``complete.json`` records the spec and the file counts); a later call with the same spec
reuses it, and a folder that does not match (another spec, missing files) is rebuilt.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["DataSetPaths", "DataSetSpec", "ensure_data_set", "kvasir_like", "plantvillage_like"]

# Kvasir v2's eight classes (paper 000 uses Kvasir); PlantVillage has 38, here named by number.
KVASIR_CLASS_NAMES = ("dyed-lifted-polyps", "dyed-resection-margins", "esophagitis", "normal-cecum",
                      "normal-pylorus", "normal-z-line", "polyps", "ulcerative-colitis")
SHAPES = ("disc", "square", "ring", "triangle", "stripes", "cross", "ellipse", "diamond")
REAL_SET, SYNTHETIC_SET = 0, 1
MARKER = "complete.json"
PNG_COMPRESS_LEVEL = 1


@dataclass(frozen=True)
class DataSetSpec:
    """One stand-in data set: ``count`` real images in ``classes`` classes and ``count x
    synthetic_multiplier`` synthetic ones, RGB ``size`` x ``size``, drawn from ``seed``."""

    name: str
    count: int
    classes: int
    size: int = 256
    synthetic_multiplier: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.classes < 2 or self.count < self.classes:
            raise ValueError(f"{self.name}: need >= 2 classes and >= 1 image per class, got {self.count} "
                             f"images in {self.classes} classes")
        if self.size < 16 or self.synthetic_multiplier < 1:
            raise ValueError(f"{self.name}: size must be >= 16 and synthetic_multiplier >= 1")

    @property
    def folder_name(self) -> str:
        return (f"{self.name}-n{self.count}-c{self.classes}-{self.size}px-x{self.synthetic_multiplier}"
                f"-seed{self.seed}")

    @property
    def synthetic_count(self) -> int:
        return self.count * self.synthetic_multiplier

    def class_names(self) -> tuple[str, ...]:
        if self.name.startswith("kvasir") and self.classes <= len(KVASIR_CLASS_NAMES):
            return KVASIR_CLASS_NAMES[: self.classes]
        return tuple(f"class_{index:02d}" for index in range(self.classes))


def kvasir_like(count: int = 8000, classes: int = 8, size: int = 256, synthetic_multiplier: int = 3,
                seed: int = 0) -> DataSetSpec:
    """The Kvasir stand-in of paper 000 (8 classes, 8,000 images) with a 3x synthetic folder."""
    return DataSetSpec("kvasir_like", count, classes, size, synthetic_multiplier, seed)


def plantvillage_like(count: int = 54309, classes: int = 38, size: int = 256, synthetic_multiplier: int = 1,
                      seed: int = 0) -> DataSetSpec:
    """The PlantVillage stand-in (38 classes, 54,309 images) with a 1x synthetic folder."""
    return DataSetSpec("plantvillage_like", count, classes, size, synthetic_multiplier, seed)


@dataclass(frozen=True)
class DataSetPaths:
    folder: Path
    real: Path
    synthetic: Path
    labels_csv: Path
    built: bool          # False: an existing complete folder was reused
    seconds: float       # to build it (or to check it, when reused)


# --- one image ---------------------------------------------------------------------------------------------


def class_colours(spec: DataSetSpec) -> np.ndarray:
    """float [classes, 2, 3] in [0, 1]: per class a background colour and a shape colour (seeded)."""
    rng = np.random.default_rng([spec.seed, 99])
    return rng.uniform(0.1, 0.9, size=(spec.classes, 2, 3)).astype(np.float32)


def smooth_field(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """float32 [size, size, 3] in [0, 1]: a cells x cells random colour grid upsampled bicubically."""
    coarse = rng.integers(0, 256, size=(cells, cells, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(coarse).resize((size, size), Image.BICUBIC), dtype=np.float32) / 255


def shape_mask(kind: str, rng: np.random.Generator, size: int) -> np.ndarray:
    """bool [size, size]: one shape of ``kind`` at a random centre, radius and (for stripes) period."""
    cy, cx = rng.uniform(0.3, 0.7, size=2) * size
    radius = rng.uniform(0.12, 0.25) * size
    y, x = np.ogrid[:size, :size]
    dy, dx = (y - cy) / radius, (x - cx) / radius
    if kind == "disc":
        return dy**2 + dx**2 <= 1
    if kind == "square":
        return (np.abs(dy) <= 0.8) & (np.abs(dx) <= 0.8)
    if kind == "ring":
        return np.abs(np.sqrt(dy**2 + dx**2) - 0.75) <= 0.2
    if kind == "triangle":
        return (dy <= 0.8) & (dy >= 2 * np.abs(dx) - 1.0)
    if kind == "stripes":
        period = rng.uniform(0.3, 0.6)
        return (np.abs(dy) <= 1) & (np.abs(dx) <= 1) & ((dy // period) % 2 == 0)
    if kind == "cross":
        return ((np.abs(dy) <= 0.25) & (np.abs(dx) <= 1)) | ((np.abs(dx) <= 0.25) & (np.abs(dy) <= 1))
    if kind == "ellipse":
        return (dy / 0.5) ** 2 + dx**2 <= 1
    if kind == "diamond":
        return np.abs(dy) + np.abs(dx) <= 1
    raise ValueError(f"unknown shape {kind!r}")


def make_image(spec: DataSetSpec, colours: np.ndarray, which_set: int, index: int) -> tuple[int, np.ndarray]:
    """(class index, uint8 [size, size, 3]) of image ``index`` of the real or synthetic set."""
    label = index % spec.classes
    rng = np.random.default_rng([spec.seed, which_set, index])
    synthetic = which_set == SYNTHETIC_SET
    background, foreground = colours[label]
    field = smooth_field(rng, spec.size, cells=3 if synthetic else 5)
    image = np.float32(0.6 * 255) * background + np.float32(0.4 * 255) * field
    mask = shape_mask(SHAPES[label % len(SHAPES)], rng, spec.size)
    image[mask] = np.float32(0.7 * 255) * foreground + np.float32(0.3 * 255) * field[mask]
    spread = 25 if synthetic else 15  # uniform noise of +-12 or +-7 grey levels
    image += rng.integers(0, spread, size=image.shape, dtype=np.uint8) - np.float32(spread // 2)
    return label, np.clip(image + np.float32(0.5), 0, 255).astype(np.uint8)


# --- a whole data set --------------------------------------------------------------------------------------


def real_path(spec: DataSetSpec, folder: Path, label: int, index: int) -> Path:
    return folder / "real" / spec.class_names()[label] / f"{index:06d}.png"


def synthetic_filename(spec: DataSetSpec, label: int, index: int) -> str:
    return f"{spec.class_names()[label]}_{index:06d}.png"


def write_images(spec: DataSetSpec, folder: Path, which_set: int, start: int, stop: int) -> None:
    """Images start..stop-1 of one set, as PNG files under ``folder`` (one worker's share)."""
    colours = class_colours(spec)
    for index in range(start, stop):
        label, pixels = make_image(spec, colours, which_set, index)
        if which_set == REAL_SET:
            path = real_path(spec, folder, label, index)
        else:
            path = folder / "synthetic" / synthetic_filename(spec, label, index)
        Image.fromarray(pixels).save(path, format="PNG", compress_level=PNG_COMPRESS_LEVEL)


def chunks(count: int, pieces: int) -> list[tuple[int, int]]:
    bounds = np.linspace(0, count, pieces + 1).astype(int)
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def build_into(spec: DataSetSpec, folder: Path, workers: int) -> None:
    """Every file of ``spec`` under ``folder`` (which exists and is empty), the marker last."""
    for name in spec.class_names():
        (folder / "real" / name).mkdir(parents=True)
    (folder / "synthetic").mkdir()
    jobs = [(REAL_SET, a, b) for a, b in chunks(spec.count, 8 * workers)]
    jobs += [(SYNTHETIC_SET, a, b) for a, b in chunks(spec.synthetic_count, 8 * workers)]
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            for done in [pool.submit(write_images, spec, folder, *job) for job in jobs]:
                done.result()
    else:
        for job in jobs:
            write_images(spec, folder, *job)
    with (folder / "synthetic" / "labels.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["filename", "label"])
        for index in range(spec.synthetic_count):
            label = index % spec.classes
            writer.writerow([synthetic_filename(spec, label, index), spec.class_names()[label]])
    marker = {"spec": asdict(spec), "real_files": spec.count, "synthetic_files": spec.synthetic_count}
    (folder / MARKER).write_text(json.dumps(marker, indent=1) + "\n", encoding="utf-8")


def is_complete(spec: DataSetSpec, folder: Path) -> bool:
    """The folder holds this spec's marker and as many files as it lists."""
    try:
        marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if marker.get("spec") != asdict(spec):
        return False
    real = sum(1 for name in spec.class_names() for _ in os.scandir(folder / "real" / name))
    synthetic = sum(1 for entry in os.scandir(folder / "synthetic") if entry.name.endswith(".png"))
    return real == spec.count and synthetic == spec.synthetic_count and (folder / "synthetic" / "labels.csv").is_file()


def paths_of(folder: Path, built: bool, seconds: float) -> DataSetPaths:
    return DataSetPaths(folder, folder / "real", folder / "synthetic", folder / "synthetic" / "labels.csv",
                        built, seconds)


def ensure_data_set(spec: DataSetSpec, root: Path, workers: int = 1) -> DataSetPaths:
    """The folder of ``spec`` under ``root``: reused when complete, else built atomically (module doc)."""
    started = time.perf_counter()
    final = Path(root) / spec.folder_name
    if final.is_dir() and is_complete(spec, final):
        return paths_of(final, built=False, seconds=time.perf_counter() - started)
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = final.parent / f".{spec.folder_name}.tmp-{os.getpid()}"
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir()
    try:
        build_into(spec, temporary, workers)
        if final.exists():  # an incomplete or mismatched folder: replaced
            shutil.rmtree(final)
        os.rename(temporary, final)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        if final.is_dir() and is_complete(spec, final):  # another process finished the same set first
            return paths_of(final, built=False, seconds=time.perf_counter() - started)
        raise
    return paths_of(final, built=True, seconds=time.perf_counter() - started)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=("kvasir_like", "plantvillage_like"), default="kvasir_like")
    parser.add_argument("--n", type=int, default=None, help="real images (default: the paper's size)")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--root", type=Path, default=Path(__file__).parent / ".scale_runs" / "cache" / "data")
    parser.add_argument("--workers", type=int, default=1)
    arguments = parser.parse_args()
    make = kvasir_like if arguments.set == "kvasir_like" else plantvillage_like
    chosen = make(size=arguments.size, **({"count": arguments.n} if arguments.n else {}))
    result = ensure_data_set(chosen, arguments.root, arguments.workers)
    print(f"{result.folder}: {'built' if result.built else 'reused'} in {result.seconds:.1f} s")
