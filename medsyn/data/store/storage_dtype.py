"""How an image store keeps pixel values on disk, and the one rule that picks the storage dtype.

Images enter the store as float32 in [0, 1] and leave it as float32 in [0, 1]; on disk they are integers
where that keeps every value, because float32 costs 4 bytes a value and uint8 1 (54,309 RGB images at
256 px: 43 GB against 11 GB). Encodings (value v -> stored q -> value read back r):

    uint8    q = rint(255 v)      r = float32(q) / 255      1 byte a value
    uint16   q = rint(65535 v)    r = float32(q) / 65535    2 bytes
    float32  q = v                r = q                     4 bytes

``decode_values`` is the only read-back function, and the exactness check runs it on what was just
encoded, so "exact" means: the float32 read back is the float32 the source decoder produced (the
decoders' ``uint8 / 255`` and ``uint16 / 65535`` are correctly rounded IEEE divisions, like this one).

The rule (``dtype`` argument of the builder):

- ``"uint8"``: every value must lie on the 1/255 grid (r == v); the first image that does not is a
  ValueError naming it. Asking for uint8 never loses precision.
- ``"uint16"``: values are rounded to the 1/65535 grid. Exact for 8-bit and 16-bit sources; values made
  by resampling or windowing move by at most about half a step (1/131070 = 7.6e-6). The largest change
  is measured and recorded (``max_abs_error``; 0 means exact).
- ``"float32"``: exact for every value.
- ``"auto"``: always exact, in the narrowest dtype that is: uint8 while every image so far is exact as
  uint8; the first chunk that is not switches the store to uint16 if that chunk is exact as uint16 (16-bit
  sources), else to float32 (resampled or windowed values). What was already written is widened exactly:
  q16 = 257 q8 (k/255 = 257k/65535, so both read back as the same correctly rounded float32), and to
  float32 as the values read back. So a stored set equals the in-memory one bit for bit, and every number
  computed from it is the in-memory path's; ``"uint16"`` halves the disk of resampled data at a recorded
  error of at most 7.6e-6.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "DTYPE_REQUESTS", "STORAGE_DTYPES", "check_dtype_request", "first_storage_dtype", "encode_values",
    "decode_values", "widen_uint8_to_uint16", "widened_values", "WIDER",
]

DTYPE_REQUESTS = ("auto", "uint8", "uint16", "float32")
STORAGE_DTYPES = ("uint8", "uint16", "float32")
_SCALE = {"uint8": 255, "uint16": 65535}
_UINT8_TO_UINT16 = 257  # 65535 / 255
WIDER = {"uint8": "uint16", "uint16": "float32"}  # the next dtype "auto" tries when one is not exact


def check_dtype_request(dtype: str) -> str:
    """``dtype`` if it is one of DTYPE_REQUESTS, else ValueError naming the argument."""
    if not isinstance(dtype, str) or dtype not in DTYPE_REQUESTS:
        raise ValueError(f"dtype must be one of {list(DTYPE_REQUESTS)}, got {dtype!r}")
    return dtype


def first_storage_dtype(request: str) -> str:
    """The storage dtype a build starts with: uint8 under "auto" (it may widen to uint16 or float32 later)."""
    return "uint8" if request == "auto" else check_dtype_request(request)


def encode_values(values: np.ndarray, storage: str) -> tuple[np.ndarray, np.ndarray]:
    """float32 [n, ...] in [0, 1] -> (stored array of dtype ``storage``, float32 [n] largest |r - v| of each
    item, where r is what ``decode_values`` reads back)."""
    if storage == "float32":
        return values, np.zeros(len(values), dtype=np.float32)
    scaled = values * np.float32(_SCALE[storage])
    np.rint(scaled, out=scaled)
    stored = scaled.astype(storage)
    del scaled
    change = decode_values(stored)
    np.subtract(change, values, out=change)
    np.abs(change, out=change)
    return stored, change.reshape(len(values), -1).max(axis=1, initial=0.0)


def decode_values(stored: np.ndarray) -> np.ndarray:
    """Stored array (uint8, uint16 or float32) -> float32 in [0, 1]; a float32 input is returned as it is."""
    name = stored.dtype.name
    if name == "float32":
        return stored
    if name not in _SCALE:
        raise ValueError(f"image store arrays are uint8, uint16 or float32, got {name}")
    values = stored.astype(np.float32)
    values /= np.float32(_SCALE[name])
    return values


def widen_uint8_to_uint16(stored: np.ndarray) -> np.ndarray:
    """uint8 values -> the uint16 values that read back as the same float32 (q16 = 257 q8)."""
    return stored.astype(np.uint16) * np.uint16(_UINT8_TO_UINT16)


def widened_values(stored: np.ndarray, to: str) -> np.ndarray:
    """Stored values -> the values of the wider dtype ``to`` that read back as the same float32."""
    if stored.dtype == np.uint8 and to == "uint16":
        return widen_uint8_to_uint16(stored)
    if to == "float32":
        return decode_values(stored)
    raise ValueError(f"a store of {stored.dtype} does not widen to {to}")
