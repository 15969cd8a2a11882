"""Image files (PNG, JPEG, BMP, TIFF, WebP) -> float32 [C, H, W] in [0, 1] at their real range.

8-bit images are read with Pillow. TIFFs of more than 8 bits per sample or of float samples (16-bit grey or
RGB, float32 / float64 in [0, 1]) are read with tifffile, which keeps every bit (Pillow reduces 16-bit RGB
TIFFs to 8 bits and float TIFFs to 0 or 1); a one-sample TIFF whose compression tifffile cannot decode
without imagecodecs (LZW) is read by Pillow, which keeps one-sample values, in the file's own dtype.
16-bit grey PNGs keep their 16 bits; a 16-bit colour PNG is refused, because Pillow would silently keep
only its high byte. The stored values are then mapped to [0, 1]
by :func:`medsyn.data.pixels.to_unit_range` (``value_range``: "auto" or a declared [low, high]), never
clipped.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import torch

from medsyn.data.pixels import VALUE_RANGE_AUTO, convert_channels, to_unit_range

__all__ = ["decode_image_array", "decode_image"]

_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # classic and BigTIFF, both byte orders
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_COLOUR_TYPES_WITH_COLOUR_OR_ALPHA = {2: "RGB", 4: "grey + alpha", 6: "RGBA"}


def _pillow_array(data: bytes, *, where: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            if image.mode in ("I;16", "I;16L", "I;16B", "I"):
                array = np.asarray(image)
                if image.mode == "I":  # 32-bit integer: accepted when it holds 16-bit values, as 16-bit
                    if array.min() < 0 or array.max() > 65535:
                        raise ValueError(f"{where}: 32-bit integer pixels outside 0..65535")
                    return array.astype(np.uint16)
                return array.astype(np.uint16)  # native byte order
            if image.mode == "F":
                return np.asarray(image, dtype=np.float32)
            if image.mode in ("L", "1"):
                return np.asarray(image.convert("L"))
            return np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(f"{where}: not a readable image ({error})") from error


def _tiff_array(data: bytes, *, where: str) -> np.ndarray | None:
    """The first image of a TIFF as stored ([H, W] or [H, W, S]), or None when Pillow reads it exactly."""
    import tifffile

    grey_or_rgb = (tifffile.PHOTOMETRIC.MINISBLACK, tifffile.PHOTOMETRIC.RGB)
    array, codec_error = None, None
    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tiff:
            page = tiff.pages[0]
            # 8-bit (palette, MINISWHITE, JPEG-in-TIFF, ...): Pillow reads every variant exactly.
            eight_bit = page.dtype is not None and page.dtype.kind in "ub" and page.bitspersample <= 8
            photometric, bits, axes = page.photometric, page.bitspersample, page.axes
            dtype, samples, compression = page.dtype, page.samplesperpixel, page.compression
            if not eight_bit and photometric in grey_or_rgb:
                try:
                    array = page.asarray()
                except ValueError as error:  # e.g. LZW, which tifffile decodes only with imagecodecs
                    codec_error = error
    except Exception as error:  # tifffile raises many types on damaged files; each is named here
        raise ValueError(f"{where}: not a readable TIFF ({type(error).__name__}: {error})") from error
    if eight_bit:
        return None
    if photometric not in grey_or_rgb:
        raise ValueError(
            f"{where}: {bits}-bit TIFF with photometric interpretation "
            f"{getattr(photometric, 'name', photometric)}; only grey (MINISBLACK) and RGB are read at more than "
            "8 bits"
        )
    if array is None and samples == 1:
        return _pillow_values(data, dtype, where=where)  # Pillow keeps every bit of one-sample images
    if array is None:
        raise ValueError(
            f"{where}: {getattr(compression, 'name', compression)}-compressed {bits}-bit {samples}-sample TIFF "
            f"could not be decoded ({codec_error}); install imagecodecs, or save it uncompressed or deflated"
        )
    if axes.startswith("S"):  # planar configuration: samples first
        array = np.moveaxis(array, 0, -1)
    return array


def _pillow_values(data: bytes, dtype: np.dtype, *, where: str) -> np.ndarray:
    """A one-sample image read by Pillow (modes I;16, I, F keep the values), in the file's own ``dtype``."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            values = np.asarray(image)
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(f"{where}: not a readable image ({error})") from error
    stored = values.astype(dtype)
    if values.ndim != 2 or not np.array_equal(stored, values):
        raise ValueError(f"{where}: Pillow did not return the stored {dtype} values of this TIFF")
    return stored


def decode_image_array(data: bytes, *, where: str) -> np.ndarray:
    """Encoded image bytes -> the stored pixels, [H, W] or [H, W, S] (S = 1..4), in their own dtype."""
    array = None
    if data[:4] in _TIFF_MAGIC:
        array = _tiff_array(data, where=where)
    elif data[:8] == _PNG_SIGNATURE and len(data) >= 26 and data[24] == 16:
        colour = _PNG_COLOUR_TYPES_WITH_COLOUR_OR_ALPHA.get(data[25])  # IHDR: bit depth, colour type
        if colour is not None:
            raise ValueError(
                f"{where}: 16-bit {colour} PNG; Pillow would keep only 8 of its 16 bits. Save it as a 16-bit "
                "TIFF (or as 16-bit grey PNG) to keep its range"
            )
    if array is None:
        array = _pillow_array(data, where=where)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (2, 3, 4)):
        raise ValueError(f"{where}: expected one grey or RGB image, got pixel array of shape {array.shape}")
    return array


def decode_image(
    data: bytes, channels: int | None, *, where: str, value_range: str | Sequence[float] = VALUE_RANGE_AUTO
) -> tuple[torch.Tensor, tuple[float, float] | None]:
    """Encoded image bytes -> (float32 [channels, H, W] in [0, 1], the range detected when it was assumed).

    channels: 1 (grey, BT.601 luma from RGB), 3 (RGB, grey repeated) or None (as stored: 1 or 3). Alpha is
    dropped. The second value is the (min, max) of a float image read with ``value_range="auto"`` (taken as
    already in [0, 1]); the caller warns about it, naming the file.
    """
    array = decode_image_array(data, where=where)
    if array.ndim == 3:
        array = array[..., :1] if array.shape[-1] == 2 else array[..., :3]  # drop alpha
    pixels, detected = to_unit_range(array, value_range, where=where)
    pixels = pixels[None] if pixels.ndim == 2 else (pixels[..., 0][None] if pixels.shape[-1] == 1
                                                    else pixels.transpose(2, 0, 1))
    tensor = torch.from_numpy(np.ascontiguousarray(pixels))
    return convert_channels(tensor.unsqueeze(0), channels, where=where)[0], detected
