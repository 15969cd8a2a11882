"""One DICOM data set -> display-ready frames, float32 [F, C, H, W] in [0, 1].

The order follows the DICOM grey-scale pipeline (PS3.4 N.2): stored values -> Modality LUT (Rescale
Slope/Intercept, or a Modality LUT Sequence; per frame from the functional groups of enhanced multi-frame
objects) -> VOI (a VOI LUT Sequence, or Window Center/Width with the
VOI LUT Function LINEAR / LINEAR_EXACT / SIGMOID, or a window you configure in modality units such as HU)
-> MONOCHROME1 inverted so that bright means high signal in every image. Colour images (RGB, and YBR_*
which pydicom converts to RGB; PALETTE COLOR through its lookup table) are scaled by their bit depth and
kept as 3 channels or turned to grey.

Compressed transfer syntaxes are decoded by whatever pydicom pixel-data plugins are installed;
:func:`decodable_transfer_syntaxes` lists them at run time. With the pinned environment (pydicom 3 +
Pillow, no pylibjpeg/GDCM) that is: uncompressed (implicit/explicit little endian, explicit big endian,
deflated), RLE Lossless, JPEG Baseline 8-bit, JPEG Extended 8-bit only, JPEG 2000 (lossless and lossy).
Not decoded: JPEG Lossless (Process 14), JPEG-LS, 12-bit JPEG Extended, HTJ2K, video; such files give an
error naming the file (or are skipped with ``on_error="skip"``). Install ``pylibjpeg[all]`` for more.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from medsyn.data.pixels import min_max_to_unit_range

__all__ = [
    "WINDOW_CHOICES", "FRAME_CHOICES", "COLOR_CHOICES",
    "window_to_unit_range", "dicom_frames", "decodable_transfer_syntaxes",
]

WINDOW_CHOICES = ("auto", "file", "minmax")  # or a [center, width] pair in modality units
FRAME_CHOICES = ("all", "middle")
COLOR_CHOICES = ("keep", "grey")
COLOR_PHOTOMETRICS = (
    "RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT", "YBR_PARTIAL_420", "PALETTE COLOR",
)


def decodable_transfer_syntaxes() -> list[str]:
    """Names of the transfer syntaxes the installed pydicom plugins can decode (checked now, not assumed)."""
    from pydicom.pixels import get_decoder
    from pydicom.uid import AllTransferSyntaxes

    names = []
    for uid in AllTransferSyntaxes:
        try:
            if get_decoder(uid).is_available:
                names.append(uid.name)
        except NotImplementedError:
            continue
    return names


def window_to_unit_range(
    values: np.ndarray, center: float, width: float, function: str = "LINEAR"
) -> np.ndarray:
    """Apply a DICOM window (PS3.3 C.11.2.1.2 / C.11.2.1.3) and return float32 in [0, 1].

    LINEAR: x <= c - 0.5 - (w-1)/2 -> 0; x > c - 0.5 + (w-1)/2 -> 1; else ((x - (c - 0.5)) / (w - 1) + 0.5).
    LINEAR_EXACT: the same with c and w as given. SIGMOID: 1 / (1 + exp(-4 (x - c) / w)).
    """
    values = np.asarray(values, dtype=np.float64)
    function = (function or "LINEAR").upper()
    if function == "SIGMOID":
        if width <= 0:
            raise ValueError(f"window width must be > 0 for SIGMOID, got {width}")
        # 1 / (1 + exp(-4z)) written as 0.5 (1 + tanh(2z)): the same value without overflow far from c.
        return (0.5 * (1.0 + np.tanh(2.0 * (values - center) / width))).astype(np.float32)
    if function == "LINEAR":
        if width < 1:
            raise ValueError(f"window width must be >= 1 for LINEAR, got {width}")
        center, width = center - 0.5, width - 1.0
        if width == 0:  # a width of exactly 1 is a threshold at the centre
            return (values > center).astype(np.float32)
    elif function == "LINEAR_EXACT":
        if width <= 0:
            raise ValueError(f"window width must be > 0 for LINEAR_EXACT, got {width}")
    else:
        raise ValueError(f"unknown VOI LUT Function {function!r}")
    scaled = (values - center) / width + 0.5
    scaled[values <= center - width / 2] = 0.0
    scaled[values > center + width / 2] = 1.0
    return np.clip(scaled, 0.0, 1.0).astype(np.float32)


def _first(value) -> float:
    """Window Center/Width may be multi-valued (several windows); the first is the default one."""
    from pydicom.multival import MultiValue

    return float(value[0]) if isinstance(value, (MultiValue, list, tuple)) else float(value)


def _apply_voi_lut_table(values: np.ndarray, item, where: str) -> np.ndarray:
    """PS3.3 C.11.2.1.1: a VOI LUT maps value ``first + i`` to LUTData[i]; values outside clamp to the ends.
    Output scaled by the LUT's bit depth (LUTDescriptor[2]) to [0, 1]."""
    entries, first, bits = (int(v) for v in item.LUTDescriptor)
    entries = entries or 65536  # 0 means 2**16 entries
    table = np.asarray(item.LUTData, dtype=np.float64).ravel()
    if len(table) < entries or not 1 <= bits <= 16:
        raise ValueError(f"{where}: VOI LUT has {len(table)} entries; descriptor says {entries}, {bits} bits")
    index = np.clip(np.round(values).astype(np.int64) - first, 0, entries - 1)
    return np.clip(table[index] / (2**bits - 1), 0.0, 1.0)


# Attributes of the grey pipeline; enhanced multi-frame objects carry them per frame in functional groups.
_GREY_PIPELINE = (
    "PhotometricInterpretation", "BitsStored", "PixelRepresentation", "RescaleSlope", "RescaleIntercept",
    "RescaleType", "ModalityLUTSequence", "WindowCenter", "WindowWidth", "VOILUTFunction", "VOILUTSequence",
)
_FUNCTIONAL_GROUP_MACROS = (
    ("PixelValueTransformationSequence", ("RescaleSlope", "RescaleIntercept", "RescaleType")),
    ("FrameVOILUTSequence", ("WindowCenter", "WindowWidth", "VOILUTFunction")),
)


def _frame_view(ds, frame_number: int):
    """The grey-pipeline attributes that apply to frame ``frame_number`` (0-based): top level, overridden by
    the Shared and then the Per-frame Functional Groups (where enhanced CT/MR objects keep them)."""
    from pydicom import Dataset

    view = Dataset()
    for keyword in _GREY_PIPELINE:
        if keyword in ds:
            setattr(view, keyword, ds[keyword].value)
    groups = []
    if len(ds.get("SharedFunctionalGroupsSequence", [])) > 0:
        groups.append(ds.SharedFunctionalGroupsSequence[0])
    if len(ds.get("PerFrameFunctionalGroupsSequence", [])) > frame_number:
        groups.append(ds.PerFrameFunctionalGroupsSequence[frame_number])
    for group in groups:
        for macro, keywords in _FUNCTIONAL_GROUP_MACROS:
            if len(group.get(macro, [])) > 0:
                item = group[macro][0]
                for keyword in keywords:
                    if keyword in item:
                        setattr(view, keyword, item[keyword].value)
    return view


def _grey_frame(pixels: np.ndarray, view, window: str | Sequence[float], where: str) -> np.ndarray:
    """One stored frame [H, W] -> float [H, W] in [0, 1] through the pipeline attributes in ``view``."""
    from pydicom.pixels import apply_modality_lut

    modality = np.asarray(apply_modality_lut(pixels, view), dtype=np.float64)
    if not np.isfinite(modality).all():
        raise ValueError(f"{where}: pixel data contain NaN or inf")
    has_voi_lut = len(view.get("VOILUTSequence", [])) > 0
    has_window = view.get("WindowCenter") is not None and view.get("WindowWidth") is not None
    if not isinstance(window, str):
        center, width = (float(v) for v in window)
        return window_to_unit_range(modality, center, width, "LINEAR")
    if window in ("auto", "file") and has_voi_lut:
        return _apply_voi_lut_table(modality, view.VOILUTSequence[0], where)
    if window in ("auto", "file") and has_window:
        function = str(view.get("VOILUTFunction", "LINEAR") or "LINEAR")
        return window_to_unit_range(modality, _first(view.WindowCenter), _first(view.WindowWidth), function)
    if window == "file":
        raise ValueError(f"{where}: window='file' but the file has no VOI LUT or Window Center/Width")
    # "minmax", or "auto" without a window in the file: the frame's own range
    if modality.max() == modality.min():
        return np.zeros_like(modality, dtype=np.float32)
    return min_max_to_unit_range(modality, modality.min(), modality.max(), where=where)


def _grey_frames(
    pixels: np.ndarray, ds, frame_numbers: Sequence[int], window: str | Sequence[float], where: str
) -> np.ndarray:
    """Stored frames [F, H, W] (original frame numbers ``frame_numbers``) -> float32 [F, H, W] in [0, 1]."""
    frames = np.stack([
        _grey_frame(frame, _frame_view(ds, number), window, where)
        for frame, number in zip(pixels, frame_numbers)
    ])
    if str(ds.PhotometricInterpretation).strip() == "MONOCHROME1":
        frames = 1.0 - frames  # MONOCHROME1: the lowest value is displayed white
    return np.asarray(frames, dtype=np.float32)


def _colour_frames(pixels: np.ndarray, ds) -> np.ndarray:
    from pydicom.pixels import apply_color_lut

    if str(ds.PhotometricInterpretation).strip() == "PALETTE COLOR":
        pixels = apply_color_lut(pixels, ds)
        maximum = float(np.iinfo(pixels.dtype).max)
    else:
        maximum = float(2 ** int(ds.BitsStored) - 1)
    return np.clip(pixels.astype(np.float64) / maximum, 0.0, 1.0).astype(np.float32)


def dicom_frames(
    ds,
    *,
    where: str,
    window: str | Sequence[float] = "auto",
    frames: str = "all",
    color: str = "keep",
) -> np.ndarray:
    """Decode pydicom data set ``ds`` into float32 [F, C, H, W] in [0, 1] (C = 1, or 3 for kept colour).

    window: "auto" (the file's VOI LUT or window, else each frame's min-max), "file" (require the file's),
        "minmax", or [center, width] in modality units (e.g. [40, 400] for a CT soft-tissue window in HU)
    frames: "all" (one image per frame) or "middle" (the middle frame of a multi-frame file)
    color: "keep" (RGB stays 3 channels) or "grey" (BT.601 luma)
    """
    if isinstance(window, str) and window not in WINDOW_CHOICES:
        raise ValueError(f"window must be one of {WINDOW_CHOICES} or [center, width], got {window!r}")
    if not isinstance(window, str) and (len(window) != 2 or float(window[1]) < 1):
        raise ValueError(f"window must be [center, width] with width >= 1, got {window!r}")
    if frames not in FRAME_CHOICES:
        raise ValueError(f"frames must be one of {FRAME_CHOICES}, got {frames!r}")
    if color not in COLOR_CHOICES:
        raise ValueError(f"color must be one of {COLOR_CHOICES}, got {color!r}")
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        raise ValueError(f"{where}: no pixel data (not an image object, e.g. a structured report)")
    photometric = str(ds.get("PhotometricInterpretation", "")).strip()
    pixels = ds.pixel_array
    number_of_frames = int(ds.get("NumberOfFrames", 1) or 1)
    is_colour = photometric in COLOR_PHOTOMETRICS
    # Give every array a frame axis: [F, H, W] grey or [F, H, W, 3] colour.
    if number_of_frames == 1:
        pixels = pixels[None]
    frame_numbers = list(range(number_of_frames))
    if frames == "middle":
        frame_numbers = [number_of_frames // 2]
        pixels = pixels[frame_numbers]
    if is_colour:
        unit = _colour_frames(pixels, ds)
        if unit.ndim == 3:  # palette lookup of [F, H, W] gives [F, H, W, 3]; RGB already has it
            raise ValueError(f"{where}: colour pixel data without a sample axis")
        unit = unit.transpose(0, 3, 1, 2)
        if color == "grey":
            unit = (unit * np.array([0.299, 0.587, 0.114], dtype=np.float32).reshape(1, 3, 1, 1)).sum(
                axis=1, keepdims=True
            )
    elif photometric in ("MONOCHROME1", "MONOCHROME2"):
        unit = _grey_frames(pixels, ds, frame_numbers, window, where)[:, None]
    else:
        raise ValueError(f"{where}: unsupported Photometric Interpretation {photometric!r}")
    unit = np.clip(unit, 0.0, 1.0).astype(np.float32)
    if not np.isfinite(unit).all():
        raise ValueError(f"{where}: pixel data contain NaN or inf")
    return np.ascontiguousarray(unit)
