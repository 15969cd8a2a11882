"""JSON has no NaN or infinity: medsyn writes an unbounded or undefined number as ``null``.

    finite_or_none({"epsilon": float("inf"), "losses": [0.5, float("nan")]})
        -> {"epsilon": None, "losses": [0.5, None]}
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["finite_or_none"]


def finite_or_none(value: Any) -> Any:
    """``value`` with every non-finite float (in nested dicts, lists and tuples) replaced by None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: finite_or_none(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(item) for item in value]
    return value
