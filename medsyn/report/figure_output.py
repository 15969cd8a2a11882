"""PNG output of the report's figures: rendered in memory from a ``matplotlib.figure.Figure`` (no pyplot
state, no display) and written atomically."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

from medsyn.io.atomic import write_bytes_atomic

__all__ = ["write_png"]


def write_png(path: str | os.PathLike, figure: Any, *, dpi: int = 100, bbox_inches: str | None = "tight") -> Path:
    """Render ``figure`` as PNG and write it to ``path`` atomically; returns the path."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches=bbox_inches)
    return write_bytes_atomic(Path(path), buffer.getvalue())
