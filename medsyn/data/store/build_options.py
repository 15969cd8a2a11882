"""A store's build options as canonical JSON: the caller's settings that decide the stored pixels.

The caller passes whatever decides its decoded images (``{"size": 256, "channels": 3, "window": [-1000,
400], "value_range": "auto"}``); the store's folder name is a digest of them and its manifest records
them, so a store made with other options is never taken for this one. Canonical means: JSON types only
(tuples become lists; a key must be a string), keys sorted, no spaces, no NaN, so equal settings give
equal text and equal digests. Other types (a Path, a numpy number, an object) are a TypeError naming the
key: their text form is not a stable identity, and a path could carry an identifier of the source into
the manifest, which the privacy rule forbids (the source root is identified by digest only).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

__all__ = ["canonical_json", "canonical_options"]


def canonical_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` as plain JSON values (a new dict), or TypeError / ValueError naming the offending key."""
    if not isinstance(options, Mapping):
        raise TypeError(f"options must be a mapping of JSON values, got {type(options).__name__}")
    return _plain(options, "options")


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, no NaN: equal values give equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def _plain(value: Any, where: str) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where} must be a finite number, got {value!r}")
        return value
    if isinstance(value, Mapping):
        plain = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where} has the key {key!r}; option keys must be strings")
            plain[key] = _plain(item, f"{where}.{key}")
        return plain
    if isinstance(value, (list, tuple)):
        return [_plain(item, f"{where}[{index}]") for index, item in enumerate(value)]
    raise TypeError(
        f"{where} is a {type(value).__name__}; build options must be JSON values (str, int, float, bool, "
        "None, lists, mappings with string keys), and must not carry paths or names of the source"
    )
