"""Atomic file writers: a reader sees the old file or the complete new one, never a torn write.

Everything medsyn writes (checkpoints, manifests, results, figures) goes through these, so a run that
is killed never leaves a half-written file where a complete one used to be. The temporary file is named
``.<name>.<random>.medsyn-tmp`` next to the target; one left by a kill is removed by the next run into that
output folder (``medsyn.io.output_folder``). A write under a claimed output folder is recorded in that
folder's ownership manifest before the file appears. An OSError (disk full, permission) names the file.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = [
    "TEMP_SUFFIX", "current_umask", "write_bytes_atomic", "write_text_atomic", "write_json_atomic",
    "torch_save_atomic",
]

TEMP_SUFFIX = ".medsyn-tmp"


def _umask_at_import() -> int:
    mask = os.umask(0o022)  # the only way to read it portably is to set it; import runs in one thread
    os.umask(mask)
    return mask


_IMPORT_UMASK = _umask_at_import()


def current_umask() -> int:
    """The process umask, read without changing it (Linux ``/proc/self/status``), else the one at import."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return _IMPORT_UMASK


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file in the same folder, fsync, then rename.

    OSError (e.g. ENOSPC, disk full) is re-raised with the same errno naming ``path``; the temporary
    file is removed and an existing ``path`` is left as it was.
    """
    from medsyn.io.output_folder import record_write  # the recorder writes through this module

    path = Path(path)
    record_write(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            # mkstemp creates 0600; give the file the mode open() would (0666 minus the umask).
            os.fchmod(handle.fileno(), 0o666 & ~current_umask())
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as error:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        reason = error.strerror or str(error)
        raise OSError(error.errno, f"{reason} while writing {path} ({len(data)} bytes)", str(path)) from error
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | os.PathLike, obj: Any) -> Path:
    """JSON with sorted keys and no NaN (``allow_nan=False``): a NaN in results is a bug, not a value."""
    return write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n")


def torch_save_atomic(path: str | os.PathLike, obj: Any) -> Path:
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return write_bytes_atomic(path, buffer.getvalue())
