"""One build at a time per store: an exclusive ``flock`` on ``<cache>/.<store folder>.medsyn-lock``.

A second build of the same store waits for the first (by default as long as it runs) and then finds the
store complete and reuses it: several processes opening one data set at once (data-parallel ranks, two
experiments) build it once. ``timeout`` bounds the wait; past it the build fails with StoreBusyError.

The lock sits next to the store folder, not inside it, because a build replaces that folder by a rename.
The kernel drops a flock when its process ends, however it ends, so a killed build never leaves a stale
lock; the lock file itself (empty) is kept, since removing it would let a waiting and a new build lock
two different files.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["LOCK_SUFFIX", "StoreBusyError", "store_build_lock"]

LOCK_SUFFIX = ".medsyn-lock"
_POLL_SECONDS = 0.05


class StoreBusyError(RuntimeError):
    """Another build of the same store held its lock for longer than the build would wait."""


@contextmanager
def store_build_lock(lock_path: Path, *, timeout: float | None, store: Path) -> Iterator[None]:
    """Hold the exclusive lock ``lock_path`` of the store folder ``store`` (module doc).

    timeout: None waits as long as the other build runs; seconds >= 0 raise StoreBusyError past them.
    """
    if timeout is not None and not timeout >= 0:
        raise ValueError(f"lock_timeout must be None or seconds >= 0, got {timeout!r}")
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as error:
        message = f"{error.strerror} while creating the build lock"
        raise OSError(error.errno, message, str(lock_path)) from error
    try:
        _lock(fd, lock_path, timeout, store)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _lock(fd: int, lock_path: Path, timeout: float | None, store: Path) -> None:
    if timeout is None:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise StoreBusyError(
                    f"image store {store} is being built by another process (it holds {lock_path}) and "
                    f"lock_timeout={timeout:g} s has passed; wait for that build, or pass "
                    "lock_timeout=None to wait"
                ) from None
            time.sleep(_POLL_SECONDS)
