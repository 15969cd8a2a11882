"""Checkpoints that refuse to load into the wrong model, never run code, and never load a damaged file.

A checkpoint is a dict with ``"format"``, ``"model"`` (the generator's name), ``"config"`` (its config
as a plain dict) and whatever state the training loop saved. On disk it is a two-line text header
followed by the ``torch.save`` bytes of that dict (the payload), written atomically::

    medsyn-checkpoint-v2
    sha256 <64 hex digits of the payload> <payload length in bytes>
    <payload>

Loading checks the header, the length (a shorter file is truncated) and the SHA-256 (any flipped byte
is corruption) before unpickling anything, then unpickles with ``torch.load(weights_only=True)``: only
tensors, numbers, strings, None and plain dicts/lists/tuples are accepted, so a checkpoint that holds a
pickled callable or any other object is refused without running it. ``save_checkpoint`` refuses to
write anything else, so every checkpoint medsyn writes loads without an allow-list. Checkpoints of
medsyn before v2 (no header) are not loaded: retrain, or load the old file with torch yourself if you
trust it.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch

from medsyn.io.atomic import write_bytes_atomic

__all__ = ["CHECKPOINT_FORMAT", "load_checkpoint", "save_checkpoint"]

CHECKPOINT_FORMAT = "medsyn-checkpoint-v2"
_MAGIC = CHECKPOINT_FORMAT.encode("ascii") + b"\n"
_MAX_HEADER = 256  # the checksum line is 7 + 64 + 1 + at most 20 digits + 1 bytes
# Exactly the types torch.load(weights_only=True) accepts without an allow-list (subclasses such as
# numpy.float64 or a namedtuple are refused by it, so they are refused here too).
_PLAIN_LEAVES = (torch.Tensor, torch.nn.Parameter, str, bytes, int, float, bool, type(None), torch.dtype,
                 torch.device)
_PLAIN_MAPPINGS = (dict, OrderedDict)
_PLAIN_SEQUENCES = (list, tuple, torch.Size)


def _check_plain(obj: Any, where: str) -> None:
    """Raise TypeError naming the first entry of ``obj`` that weights-only loading would refuse."""
    if type(obj) in _PLAIN_MAPPINGS:
        for key, value in obj.items():
            if type(key) not in (str, int):
                raise TypeError(f"checkpoint entry {where or '<root>'} has a key of type {type(key).__name__}")
            _check_plain(value, f"{where}.{key}" if where else str(key))
    elif type(obj) in _PLAIN_SEQUENCES:
        for position, value in enumerate(obj):
            _check_plain(value, f"{where}[{position}]")
    elif type(obj) not in _PLAIN_LEAVES:
        raise TypeError(
            f"checkpoint entry {where or '<root>'} is a {type(obj).__module__}.{type(obj).__qualname__}; "
            "checkpoints hold only tensors, numbers, strings, None and dicts/lists/tuples of them "
            "(convert it, e.g. float(x) or x.tolist())"
        )


def save_checkpoint(path: str | Path, *, model: str, config: dict[str, Any], state: dict[str, Any]) -> Path:
    """Write the checkpoint atomically; TypeError (before writing) if ``state``/``config`` hold other objects."""
    payload = {"format": CHECKPOINT_FORMAT, "model": model, "config": config, **state}
    _check_plain(payload, "")
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    data = buffer.getvalue()
    header = _MAGIC + f"sha256 {hashlib.sha256(data).hexdigest()} {len(data)}\n".encode("ascii")
    return write_bytes_atomic(path, header + data)


def _verified_payload(path: Path) -> bytes:
    """The payload bytes of ``path`` after checking header, length and SHA-256 (ValueError otherwise)."""
    with path.open("rb") as handle:
        magic = handle.read(len(_MAGIC))
        if magic != _MAGIC:
            raise ValueError(
                f"checkpoint {path} is not a {CHECKPOINT_FORMAT} file (no checksum header): it is not a "
                "medsyn checkpoint, or one written before checksummed checkpoints, which are not loaded; "
                "retrain to get a checkpoint this version can verify"
            )
        line = handle.readline(_MAX_HEADER)
        fields = line.decode("ascii", "replace").split()
        if (
            not line.endswith(b"\n") or len(fields) != 3 or fields[0] != "sha256"
            or len(fields[1]) != 64 or not fields[2].isdigit()
        ):
            raise ValueError(f"checkpoint {path} is corrupted: unreadable checksum header")
        expected_digest, expected_length = fields[1], int(fields[2])
        # Compare sizes before reading, so a damaged length field never drives a huge read.
        held = os.fstat(handle.fileno()).st_size - handle.tell()
        if held < expected_length:
            raise ValueError(
                f"checkpoint {path} is truncated: the header declares {expected_length} payload bytes, "
                f"the file holds {held}"
            )
        if held > expected_length:
            raise ValueError(
                f"checkpoint {path} is corrupted: the file holds {held} payload bytes, more than the "
                f"{expected_length} its header declares"
            )
        data = handle.read(expected_length)
    digest = hashlib.sha256(data).hexdigest()
    if digest != expected_digest:
        raise ValueError(
            f"checkpoint {path} is corrupted: checksum mismatch (payload sha256 {digest}, header {expected_digest})"
        )
    return data


def load_checkpoint(
    path: str | Path, *, model: str | None = None, config: dict[str, Any] | None = None
) -> dict:
    """Load ``path``; if ``model``/``config`` are given they must match what the checkpoint was made with.

    ValueError naming ``path`` if the file is truncated, corrupted, holds non-weight objects (nothing in it
    is executed), is not a medsyn checkpoint, or was made by another model or config.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    data = _verified_payload(path)
    try:
        payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        reason = str(error).strip().splitlines()
        detail = next((line for line in reason if "GLOBAL" in line or "Unsupported" in line), reason[0] if reason else "")
        raise ValueError(
            f"checkpoint {path} contains non-weight objects ({detail.strip()}); medsyn loads only tensors, "
            "numbers, strings and plain containers from a checkpoint and never runs code stored in one"
        ) from error
    except Exception as error:  # torch raises several types for a payload it cannot parse
        raise ValueError(f"checkpoint {path} could not be read: {error}") from error
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a medsyn checkpoint (expected format {CHECKPOINT_FORMAT!r})")
    if model is not None and payload["model"] != model:
        raise ValueError(f"checkpoint {path} holds a {payload['model']!r} model, not a {model!r} model")
    if config is not None and payload["config"] != config:
        differing = sorted(
            key
            for key in set(config) | set(payload["config"])
            if config.get(key, "<missing>") != payload["config"].get(key, "<missing>")
        )
        raise ValueError(
            f"checkpoint {path} was made with a different {payload['model']} config; differing keys: {differing}"
        )
    return payload
