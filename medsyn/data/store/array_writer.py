"""Writing a store's ``images.npy`` in order, one chunk of rows at a time, with the memory of one chunk.

The file is a standard ``.npy`` (numpy's header for the full [N, C, H, W] shape, then the rows) that
``np.load(mmap_mode="r")`` maps for reading. It is written by appending, not through a writable memory
map (``np.lib.format.open_memmap``): the rows arrive in order anyway, a full disk is then an OSError
naming the file instead of a SIGBUS that kills the process, and the written pages are ordinary page
cache, not a mapping the size of the whole store in the process's resident memory.

``widened`` is the one change of mind a build may have (storage_dtype, rule "auto"): the rows already
written are copied, chunk by chunk and widened exactly, into a file of the wider dtype that replaces it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from medsyn.data.store.storage_dtype import widened_values

__all__ = ["NpyWriter", "fsync_path", "widened"]


class NpyWriter:
    """An ``.npy`` file of ``shape`` and ``dtype`` at ``path`` (must not exist), filled by :meth:`append`."""

    def __init__(self, path: Path, dtype: str, shape: tuple[int, ...]) -> None:
        self.path = path
        self.dtype = np.dtype(dtype)
        self.shape = shape
        self.rows_written = 0
        self._file = open(path, "xb")  # closed by close() or discard()
        header = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False, "shape": shape}
        self._write(lambda: np.lib.format.write_array_header_1_0(self._file, header))
        self.header_bytes = self._file.tell()

    def append(self, rows: np.ndarray) -> None:
        """Write the next ``len(rows)`` rows (dtype and row shape as declared)."""
        if rows.dtype != self.dtype or rows.shape[1:] != self.shape[1:]:
            raise ValueError(
                f"{self.path}: rows of {rows.dtype} {rows.shape[1:]}, expected {self.dtype} {self.shape[1:]}"
            )
        if self.rows_written + len(rows) > self.shape[0]:
            raise ValueError(f"{self.path}: more than the {self.shape[0]} rows declared")
        self._write(lambda: self._file.write(np.ascontiguousarray(rows).data))
        self.rows_written += len(rows)

    def close(self) -> None:
        """Flush and fsync; every declared row must have been written."""
        if self.rows_written != self.shape[0]:
            raise ValueError(f"{self.path}: {self.rows_written} of {self.shape[0]} rows written")
        self._write(lambda: (self._file.flush(), os.fsync(self._file.fileno())))
        self._file.close()

    def discard(self) -> None:
        """Close without the checks (the file is left for the caller to delete)."""
        self._file.close()

    def _write(self, action) -> None:
        try:
            action()
        except OSError as error:
            self._file.close()
            reason = error.strerror or str(error)
            message = f"{reason} while writing the image store file"
            raise OSError(error.errno, message, str(self.path)) from error


def widened(writer: NpyWriter, to: str, *, chunk_rows: int) -> NpyWriter:
    """A writer of dtype ``to`` at ``writer.path`` holding the rows ``writer`` wrote, widened exactly
    (storage_dtype.widened_values); ``writer`` is closed and its file replaced."""
    written = writer.rows_written
    writer.discard()
    wide_path = writer.path.with_name(f"{writer.path.stem}.{to}{writer.path.suffix}")
    wide = NpyWriter(wide_path, to, writer.shape)
    try:
        if written:
            narrow = np.memmap(writer.path, dtype=writer.dtype, mode="r", offset=writer.header_bytes,
                               shape=(written, *writer.shape[1:]))
            for start in range(0, written, chunk_rows):
                wide.append(widened_values(np.asarray(narrow[start : min(start + chunk_rows, written)]), to))
            del narrow
        os.replace(wide.path, writer.path)
    except BaseException:
        wide.discard()
        raise
    wide.path = writer.path
    return wide


def fsync_path(path: Path) -> None:
    """fsync a file or a folder (so a rename into it is on disk before the next step depends on it)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
