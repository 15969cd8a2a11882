"""What a source does with a file it cannot read: stop with an error naming the file, or skip it and say so.

``on_error="raise"`` (the default) stops at the first bad file. ``on_error="skip"`` leaves the file out,
collects it here, warns once listing every skipped file, and the list goes into the split manifest so
a run records exactly which inputs it did not use. Nothing is skipped silently.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field

__all__ = ["ON_ERROR_CHOICES", "SkippedFiles", "check_on_error"]

ON_ERROR_CHOICES = ("raise", "skip")


def check_on_error(on_error: str) -> str:
    if on_error not in ON_ERROR_CHOICES:
        raise ValueError(f"on_error must be one of {ON_ERROR_CHOICES}, got {on_error!r}")
    return on_error


@dataclass
class SkippedFiles:
    """Collects files a source could not use under ``on_error``; in "raise" mode the first one raises."""

    on_error: str = "raise"
    entries: list[dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        check_on_error(self.on_error)

    def bad_file(self, path: str | os.PathLike, reason: str, *, missing: bool = False) -> None:
        """Report ``path`` as unusable: raise (FileNotFoundError if ``missing``, else ValueError) or log."""
        if self.on_error == "raise":
            if missing:
                raise FileNotFoundError(f"{path}: {reason}")
            raise ValueError(f"{path}: {reason}")
        self.entries.append({"file": str(path), "reason": reason})

    def warn_if_any(self, source: str) -> None:
        if not self.entries:
            return
        listing = "\n".join(f"  {entry['file']}: {entry['reason']}" for entry in self.entries)
        warnings.warn(
            f"{source}: skipped {len(self.entries)} file(s) (on_error='skip'):\n{listing}",
            UserWarning,
            stacklevel=3,
        )
