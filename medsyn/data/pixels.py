"""Pixel conversions every source shares: integer/float arrays to float32 in [0, 1], channel count, size.

Sources decode files into numpy arrays; these functions turn them into the ImageSet form
(float32 [N, C, H, W] in [0, 1]) the same way for every source, so a digit, a PNG and a DICOM frame
of the same content become the same tensor.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "integer_to_unit_range", "min_max_to_unit_range", "check_value_range", "to_unit_range",
    "convert_channels", "resize_images", "stack_images",
]

VALUE_RANGE_AUTO = "auto"


def integer_to_unit_range(array: np.ndarray, *, where: str) -> np.ndarray:
    """uint8/uint16 (or bool) array of any shape -> float32 in [0, 1] by dividing by the dtype maximum.

    Used for formats whose integer range is the display range (PNG/JPEG, MedMNIST).
    """
    if array.dtype == np.bool_:
        return array.astype(np.float32)
    if array.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"{where}: expected uint8 or uint16 pixels, got {array.dtype}")
    return array.astype(np.float32) / float(np.iinfo(array.dtype).max)


def check_value_range(value_range: str | Sequence[float]) -> str | tuple[float, float]:
    """``"auto"`` or two finite numbers [low, high] with low < high (ValueError naming value_range)."""
    if isinstance(value_range, str):
        if value_range != VALUE_RANGE_AUTO:
            raise ValueError(f"value_range must be 'auto' or [low, high], got {value_range!r}")
        return value_range
    try:
        low, high = (float(v) for v in value_range)
    except (TypeError, ValueError) as error:
        raise ValueError(f"value_range must be 'auto' or [low, high], got {value_range!r}") from error
    if any(isinstance(v, bool) for v in value_range) or not (math.isfinite(low) and math.isfinite(high)) \
            or high <= low:
        raise ValueError(
            f"value_range must be 'auto' or [low, high] with finite low < high, got {value_range!r}"
        )
    return low, high


def to_unit_range(
    array: np.ndarray, value_range: str | Sequence[float] = VALUE_RANGE_AUTO, *, where: str
) -> tuple[np.ndarray, tuple[float, float] | None]:
    """Pixels at their stored range -> (float32 in [0, 1] of the same shape, the range detected if guessed).

    Never clips: a value outside the range is an error naming ``where``.

    value_range "auto": bool -> 0/1; uint8 / 255; uint16 / 65535; float taken as it is when every value is in
        [0, 1], and then its (min, max) is returned so the caller can warn that [0, 1] was assumed; a float
        outside [0, 1], or another integer type (int16, int32, uint32), has no known range -> ValueError
        asking for one.
    value_range [low, high]: (x - low) / (high - low) for any dtype (e.g. [0, 4095] for 12-bit pixels stored
        in 16 bits); a value outside [low, high] -> ValueError naming both ranges.
    """
    value_range = check_value_range(value_range)
    array = np.asarray(array)
    if array.dtype.byteorder not in ("=", "|"):
        array = array.astype(array.dtype.newbyteorder("="))
    if array.size == 0:
        raise ValueError(f"{where}: image has no pixels (shape {array.shape})")
    if array.dtype.kind not in "buif":
        raise ValueError(f"{where}: pixels of type {array.dtype} are not an intensity image")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise ValueError(f"{where}: pixels contain NaN or inf")
    low_found, high_found = float(array.min()), float(array.max())
    if value_range == VALUE_RANGE_AUTO:
        if array.dtype in (np.bool_, np.uint8, np.uint16):
            return integer_to_unit_range(array, where=where), None
        if array.dtype.kind == "f":
            if 0.0 <= low_found and high_found <= 1.0:
                return array.astype(np.float32), (low_found, high_found)
            raise ValueError(
                f"{where}: float pixels span [{low_found:g}, {high_found:g}], outside [0, 1]; declare "
                "value_range: [low, high] (the range of this data) so they are scaled, not clipped"
            )
        raise ValueError(
            f"{where}: {array.dtype} pixels (values [{low_found:g}, {high_found:g}]) have no standard range; "
            "declare value_range: [low, high]"
        )
    low, high = value_range
    if low_found < low or high_found > high:
        raise ValueError(
            f"{where}: pixels span [{low_found:g}, {high_found:g}], outside the declared value_range "
            f"[{low:g}, {high:g}]"
        )
    return ((array.astype(np.float64) - low) / (high - low)).astype(np.float32), None


def min_max_to_unit_range(array: np.ndarray, low: float, high: float, *, where: str) -> np.ndarray:
    """Clip ``array`` to [low, high] and map it linearly to float32 [0, 1] (a window). ``high > low``."""
    array = np.asarray(array, dtype=np.float64)
    if not np.isfinite(array).all():
        raise ValueError(f"{where}: pixel data contain NaN or inf")
    if not (np.isfinite(low) and np.isfinite(high)) or high <= low:
        raise ValueError(f"{where}: window must have finite low < high, got [{low}, {high}]")
    return ((np.clip(array, low, high) - low) / (high - low)).astype(np.float32)


def convert_channels(images: torch.Tensor, channels: int | None, *, where: str) -> torch.Tensor:
    """float [N, C, H, W] with C in {1, 3} -> [N, channels, H, W]; ``None`` keeps C.

    Grey from RGB uses ITU-R BT.601 luma weights (what PIL's ``convert("L")`` uses); RGB from grey repeats it.
    """
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"{where}: expected images [N, 1 or 3, H, W], got shape {tuple(images.shape)}")
    if channels is None or channels == images.shape[1]:
        return images
    if channels == 1:
        weights = torch.tensor([0.299, 0.587, 0.114], dtype=images.dtype).view(1, 3, 1, 1)
        return (images * weights).sum(dim=1, keepdim=True).clamp_(0.0, 1.0)
    if channels == 3:
        return images.expand(-1, 3, -1, -1).contiguous()
    raise ValueError(f"{where}: channels must be 1, 3 or None, got {channels!r}")


def resize_images(images: torch.Tensor, size: int | tuple[int, int] | None) -> torch.Tensor:
    """float [N, C, H, W] in [0, 1] -> [N, C, size, size] (bilinear; antialiased when shrinking).

    ``None`` keeps the size. The result is clamped to [0, 1] (bilinear weights are convex, so only
    rounding can step outside).
    """
    if size is None:
        return images
    target = (int(size), int(size)) if isinstance(size, int) else (int(size[0]), int(size[1]))
    if min(target) < 1:
        raise ValueError(f"size must be a positive integer, got {size!r}")
    if tuple(images.shape[-2:]) == target:
        return images
    shrinking = target[0] < images.shape[-2] or target[1] < images.shape[-1]
    resized = F.interpolate(images, size=target, mode="bilinear", align_corners=False, antialias=shrinking)
    return resized.clamp_(0.0, 1.0)


def stack_images(images: list[torch.Tensor], size: int | None, names: list[str]) -> torch.Tensor:
    """Per-image float [C, H, W] tensors (sizes may differ) -> float32 [N, C, size, size].

    With ``size=None`` every image must already have the same shape; the first one that differs is named
    (mixed sizes are a property of the data the user should decide about, not something to paper over).
    """
    if not images:
        raise ValueError("no images to stack")
    for image, name in zip(images, names):
        if image.shape[0] != images[0].shape[0]:
            raise ValueError(
                f"{name}: {image.shape[0]} channel(s) but {names[0]} has {images[0].shape[0]}; "
                "convert colour to grey (or grey to RGB) so every image has the same channels"
            )
    if size is None:
        first = tuple(images[0].shape)
        for image, name in zip(images, names):
            if tuple(image.shape) != first:
                raise ValueError(
                    f"{name}: image shape {tuple(image.shape)} differs from {names[0]} {first}; "
                    "set size to resize every image"
                )
        return torch.stack(images).contiguous()
    return torch.cat([resize_images(image.unsqueeze(0), size) for image in images]).contiguous()
