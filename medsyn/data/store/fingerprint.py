"""Fingerprints of a source's files: what a store was built from, kept without a single file name.

Each source file becomes one digest (hex sha256):

- scheme "stat" (default): sha256 of ``"<relative path>\\0<size>\\0<mtime_ns>"``; a check costs one stat
  a file, and a file that is rewritten or touched counts as changed.
- scheme "content": sha256 of ``"<relative path>\\0<size>\\0<sha256 of the bytes>"``; a touched but
  unchanged file still matches, and every check reads every byte (still far cheaper than decoding).

The relative path is POSIX-style under the source root. The project's privacy rule keeps identifiers
of a source out of every file medsyn writes; a file name can be one (a patient's name, an accession
number), so a store's manifest records only the sorted digests, never a name, a size or a date.
Comparing the current files with a recorded set still tells which *current* files are new or changed
(their digest is not recorded; they are named from the current listing, in memory) and how many
recorded files are gone or changed (recorded digests no current file has); a changed file counts once
on each side, since no name is kept to pair them.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["FINGERPRINT_SCHEMES", "FileChanges", "SourceFiles", "compare_files", "fingerprint_files"]

FINGERPRINT_SCHEMES = ("stat", "content")
_READ_BLOCK = 1 << 20
_NAMED_CHANGES = 5


@dataclass(frozen=True)
class SourceFiles:
    """The fingerprinted files of a source, in the caller's order.

    relpaths: POSIX paths relative to the root (held in memory only, for messages)
    digests: one digest per file, same order
    """

    scheme: str
    relpaths: tuple[str, ...]
    digests: tuple[str, ...]

    def sorted_digests(self) -> list[str]:
        """What a manifest records: the digests without their order (which could follow the names)."""
        return sorted(self.digests)


@dataclass(frozen=True)
class FileChanges:
    """How the current files differ from a recorded set of digests.

    new_or_changed: relative paths of the current files whose digest is not recorded
    gone_or_changed: how many recorded digests no current file has
    """

    new_or_changed: tuple[str, ...]
    gone_or_changed: int

    @property
    def changed(self) -> bool:
        return bool(self.new_or_changed) or self.gone_or_changed > 0

    def describe(self) -> str:
        """A message naming up to 5 current files; it names source files, so keep it out of exported files."""
        parts = []
        if self.new_or_changed:
            shown = ", ".join(self.new_or_changed[:_NAMED_CHANGES])
            more = len(self.new_or_changed) - _NAMED_CHANGES
            parts.append(
                f"{len(self.new_or_changed)} current file(s) new or changed ({shown}"
                + (f" and {more} more)" if more > 0 else ")")
            )
        if self.gone_or_changed:
            parts.append(f"{self.gone_or_changed} recorded file(s) gone or changed")
        return "; ".join(parts) if parts else "no file changed"


def fingerprint_files(
    root: str | os.PathLike, files: Sequence[str | os.PathLike], *, scheme: str = "stat"
) -> SourceFiles:
    """Digest every file (module doc). Each must be a regular file under ``root`` (FileNotFoundError or
    ValueError naming it) and listed once."""
    if scheme not in FINGERPRINT_SCHEMES:
        raise ValueError(f"fingerprint scheme must be one of {list(FINGERPRINT_SCHEMES)}, got {scheme!r}")
    root_path = os.path.abspath(root)
    if not os.path.isdir(root_path):
        raise FileNotFoundError(f"source root {root_path} is not a folder")
    prefix = os.path.join(root_path, "")
    relpaths: list[str] = []
    digests: list[str] = []
    seen: set[str] = set()
    for file in files:  # string operations, not Path objects: a data set has up to ~10^5 files
        path = os.path.abspath(file)
        if not path.startswith(prefix):
            raise ValueError(f"source file {path} is not under the source root {root_path}")
        relpath = path[len(prefix):].replace(os.sep, "/")
        if relpath in seen:
            raise ValueError(f"source file {path} is listed twice")
        seen.add(relpath)
        digests.append(_file_digest(path, relpath, scheme))
        relpaths.append(relpath)
    return SourceFiles(scheme, tuple(relpaths), tuple(digests))


def _file_digest(path: str, relpath: str, scheme: str) -> str:
    try:
        status = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"source file {path} does not exist") from None
    if not stat.S_ISREG(status.st_mode):
        raise ValueError(f"source file {path} is not a regular file")
    third = str(status.st_mtime_ns) if scheme == "stat" else _content_digest(path)
    return hashlib.sha256(f"{relpath}\0{status.st_size}\0{third}".encode()).hexdigest()


def _content_digest(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_READ_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def compare_files(recorded_digests: Sequence[str], current: SourceFiles) -> FileChanges:
    """Current files whose digest is not recorded (by name), and the count of recorded digests not current."""
    recorded = set(recorded_digests)
    current_digests = set(current.digests)
    new_or_changed = tuple(
        relpath for relpath, digest in zip(current.relpaths, current.digests) if digest not in recorded
    )
    return FileChanges(new_or_changed, len(recorded - current_digests))
