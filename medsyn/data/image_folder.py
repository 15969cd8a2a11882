"""Class-per-folder image sets (Kvasir, PlantVillage and its Corn subset; paper 000 §3).

Layout: ``root/<class name>/<image file>`` (images may sit in sub-folders of a class folder). Class indices
follow the sorted folder names. PNG, JPEG, BMP, TIFF and WebP files are read with Pillow; other files
(README.txt, .DS_Store) are ignored. Files are opened read-only; nothing is written next to them.

Bad input: a missing root -> FileNotFoundError; a class folder with no images -> ValueError naming it
(always, since dropping a class silently would change the label set); an undecodable image or a file
with the same bytes as an earlier one (the same image would otherwise land in two splits) -> ValueError
naming the file, or with ``on_error="skip"`` the file is left out and listed.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from medsyn.data.image_set import ImageSet
from medsyn.data.pixels import convert_channels, integer_to_unit_range, stack_images
from medsyn.data.read_errors import SkippedFiles
from medsyn.data.source_data import SourceData

__all__ = [
    "IMAGE_EXTENSIONS", "read_image_folder", "load_image_folder", "decode_image_bytes", "list_class_folders",
]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def decode_image_bytes(data: bytes, channels: int, *, where: str) -> torch.Tensor:
    """Encoded image bytes -> float32 [channels, H, W] in [0, 1]. 16-bit grey keeps its 16 bits."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            if image.mode in ("I;16", "I;16L", "I;16B", "I"):
                array = np.asarray(image)
                if array.min() < 0 or array.max() > 65535:
                    raise ValueError(f"{where}: 32-bit integer pixels outside 0..65535")
                pixels = integer_to_unit_range(array.astype(np.uint16), where=where)[None]
            elif image.mode in ("L", "1"):
                pixels = integer_to_unit_range(np.asarray(image.convert("L")), where=where)[None]
            else:
                rgb = np.asarray(image.convert("RGB"))
                pixels = integer_to_unit_range(rgb, where=where).transpose(2, 0, 1)
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(f"{where}: not a readable image ({error})") from error
    tensor = torch.from_numpy(np.ascontiguousarray(pixels))
    return convert_channels(tensor.unsqueeze(0), channels, where=where)[0]


def list_class_folders(
    root: Path, classes: Sequence[str] | None = None, class_prefix: str | Sequence[str] | None = None
) -> list[Path]:
    """Sorted class folders of ``root``, restricted to ``classes`` (exact names) and/or ``class_prefix``."""
    if not root.is_dir():
        raise FileNotFoundError(f"image folder not found: {root}")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if classes is not None:
        wanted = list(classes)
        missing = [name for name in wanted if not (root / name).is_dir()]
        if missing:
            raise FileNotFoundError(f"class folder(s) {missing} not found in {root}")
        folders = [folder for folder in folders if folder.name in wanted]
    if class_prefix is not None:
        prefixes = (class_prefix,) if isinstance(class_prefix, str) else tuple(class_prefix)
        folders = [folder for folder in folders if folder.name.startswith(prefixes)]
    if not folders:
        raise ValueError(
            f"{root}: no class folders" + (f" matching prefix {class_prefix!r}" if class_prefix else "")
        )
    return folders


def read_image_folder(
    path: str | os.PathLike,
    *,
    size: int | None = None,
    channels: int = 3,
    classes: Sequence[str] | None = None,
    class_prefix: str | Sequence[str] | None = None,
    on_error: str = "raise",
    source: str | None = None,
) -> SourceData:
    """Read ``path/<class>/<image>`` into float32 [N, channels, size, size] in [0, 1] (see module doc)."""
    root = Path(path)
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels!r}")
    skipped = SkippedFiles(on_error)
    folders = list_class_folders(root, classes, class_prefix)
    images: list[torch.Tensor] = []
    labels: list[int] = []
    item_ids: list[str] = []
    first_by_digest: dict[str, str] = {}
    for class_index, folder in enumerate(folders):
        files = sorted(
            p for p in folder.rglob("*")
            if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")
        )
        if not files:
            raise ValueError(f"class folder {folder} has no image files ({', '.join(IMAGE_EXTENSIONS)})")
        before = len(images)
        for path in files:
            data = path.read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            if digest in first_by_digest:
                skipped.bad_file(path, f"same bytes as {first_by_digest[digest]} (duplicate image)")
                continue
            try:
                image = decode_image_bytes(data, channels, where=str(path))
            except ValueError as error:
                skipped.bad_file(path, str(error).removeprefix(f"{path}: "))
                continue
            first_by_digest[digest] = str(path)
            images.append(image)
            labels.append(class_index)
            item_ids.append(str(path.relative_to(root)))
        if len(images) == before:
            raise ValueError(f"class folder {folder} has no readable images (all were skipped)")
    skipped.warn_if_any(str(root))
    image_set = ImageSet(
        images=stack_images(images, size, [str(root / item) for item in item_ids]),
        labels=torch.tensor(labels, dtype=torch.int64),
        class_names=tuple(folder.name for folder in folders),
        source=source or str(root),
    )
    return SourceData(sets=image_set, skipped=skipped.entries, item_ids=item_ids)


def load_image_folder(path: str | os.PathLike, **options) -> ImageSet:
    """ImageSet of ``path/<class>/<image>`` (see :func:`read_image_folder`)."""
    return read_image_folder(path, **options).sets  # type: ignore[return-value]
