"""Where the time and the memory of a run went: wall seconds per stage and the process's peak RSS.

    costs = StageCosts()
    with costs.stage("utility") as work:
        ...
        work.add(len(training_set) * epochs, "images")     # what it worked through, for its throughput
    costs.as_metadata()   # {"stages": {"utility": {"seconds": 12.3, "calls": 3, "peak_rss_bytes": ...,
                          #                         "items": 9600, "unit": "images"}},
                          #  "peak_rss_bytes": ..., "peak_rss_children_bytes": ...}

A stage entered several times (once per seed and synthetic set) adds up its seconds and its items; ``items``
and ``unit`` are present only for a stage that counted its work (one unit per stage: images, image pairs). ``peak_rss_bytes`` of a
stage is the process's resident-set high-water mark when the stage last ended (``VmHWM``; it only
grows, so the stage where it jumps is the one that needed the memory). ``peak_rss_children_bytes`` is the
largest high-water mark of a finished child process (DataLoader workers), not their sum. The object is
created per run and passed down: no process-global state.
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["StageCosts", "StageWork", "peak_rss_bytes"]


def peak_rss_bytes(who: int = resource.RUSAGE_SELF) -> int:
    """The resident-set high-water mark in bytes: of this process (Linux: ``VmHWM`` of /proc/self/status,
    which starts afresh at exec, whereas ``ru_maxrss`` keeps the parent's mark from before the fork), or
    with ``RUSAGE_CHILDREN`` of the largest finished child (``ru_maxrss``: KiB on Linux, bytes on macOS)."""
    if who == resource.RUSAGE_SELF:
        try:
            with open("/proc/self/status", encoding="ascii") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            pass
    peak = resource.getrusage(who).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024


class StageWork:
    """What one pass through a stage worked through: ``add(count, unit)``, one unit per stage."""

    def __init__(self, name: str, unit: str | None = None) -> None:
        self.name, self.unit, self.items = name, unit, 0

    def add(self, count: int, unit: str = "images") -> None:
        if int(count) < 0:
            raise ValueError(f"stage {self.name!r}: a negative count of {unit} ({count})")
        if self.unit is not None and unit != self.unit:
            raise ValueError(f"stage {self.name!r} counts {self.unit}, not {unit}")
        self.unit, self.items = unit, self.items + int(count)


class StageCosts:
    """Wall seconds, call count and the peak RSS at the end of each named stage, in first-entered order."""

    def __init__(self) -> None:
        self._stages: dict[str, dict[str, float | int]] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[StageWork]:
        started = time.perf_counter()
        work = StageWork(name, self._stages.get(name, {}).get("unit"))
        try:
            yield work
        finally:
            entry = self._stages.setdefault(name, {"seconds": 0.0, "calls": 0, "peak_rss_bytes": 0})
            entry["seconds"] += time.perf_counter() - started
            entry["calls"] += 1
            entry["peak_rss_bytes"] = peak_rss_bytes()
            if work.unit is not None:
                entry["items"] = entry.get("items", 0) + work.items
                entry["unit"] = work.unit

    def as_metadata(self) -> dict[str, Any]:
        return {"stages": {name: dict(entry) for name, entry in self._stages.items()},
                "peak_rss_bytes": peak_rss_bytes(),
                "peak_rss_children_bytes": peak_rss_bytes(resource.RUSAGE_CHILDREN)}
