"""Output folders: medsyn deletes or replaces only what it wrote itself, and one run at a time writes a folder.

Every workflow and export claims its output folder before it writes a byte:

    with claim_output_folder("runs/cvae", writer="train_generator", settings={"seed": 0, ...}) as folder:
        ...  # every atomic write under runs/cvae is recorded in runs/cvae/.medsyn-outputs.json first

The claim refuses, before anything is written (so a refused run changes no file; ``adopt`` names files this
process wrote there just before, e.g. the executed config ``monai.bundle run --tracking`` saves into
output_dir: they are recorded as the run's own entries instead of being refused):

- a path that is a file: NotADirectoryError "... expected a directory";
- a non-empty folder without an ownership manifest (a study folder, another tool's output), a folder another
  medsyn writer owns (generate_images into a training run) or a medsyn folder holding entries medsyn did not
  record writing: ForeignFolderError naming the folder and what was found;
- a folder whose recorded settings differ from this run's: SettingsMismatchError naming every differing leaf
  key (``model_config.latent_dim: 16 (finished run) vs 32 (this command)``);
- a folder another run is writing: FolderInUseError. The lock is ``flock`` on ``<folder>/.medsyn.lock``; the
  kernel drops it when the process ends, however it ends, so a killed run never leaves a stale lock.

Then it removes what a killed run left: temporary files of atomic writes (``*.medsyn-tmp``) and scratch
folders (``.medsyn-staging-*``, ``.medsyn-retired-*``).

The ownership manifest ``.medsyn-outputs.json``:

    {"format": "medsyn-outputs-v1", "writer": "train_generator", "settings": {...} or null,
     "entries": ["checkpoint.pt", "split_manifest.json", ...], "status": "running" or "finished"}

``entries`` are top-level names of the folder (a file, or a folder whose whole tree medsyn wrote); it is
written before the first file of a run appears and each time a new entry is about to appear, so a killed
run's outputs stay recorded and its re-run resumes. A sub-folder holding its own manifest (``synthetic/``
inside a training run) belongs to its own writer.
"""

from __future__ import annotations

import fcntl
import functools
import inspect
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from medsyn.io.atomic import TEMP_SUFFIX, write_json_atomic

__all__ = [
    "LOCK_NAME",
    "OWNERSHIP_FORMAT",
    "OWNERSHIP_NAME",
    "FolderInUseError",
    "ForeignFolderError",
    "OutputFolder",
    "SettingsMismatchError",
    "check_output_folder",
    "claim_output_folder",
    "record_write",
    "settings_differences",
    "writes_output_folder",
]

OWNERSHIP_NAME = ".medsyn-outputs.json"
LOCK_NAME = ".medsyn.lock"
OWNERSHIP_FORMAT = "medsyn-outputs-v1"
_SCRATCH_PREFIXES = (".medsyn-staging-", ".medsyn-retired-")
_SHOWN_ENTRIES = 5

FunctionT = TypeVar("FunctionT", bound=Callable[..., Any])


class ForeignFolderError(FileExistsError):
    """The output folder holds files medsyn did not write (or another medsyn writer's outputs)."""


class FolderInUseError(RuntimeError):
    """Another run holds the output folder's lock."""


class SettingsMismatchError(ValueError):
    """The output folder holds a run made with other data-affecting settings."""


def _is_scratch(name: str) -> bool:
    return name.startswith(_SCRATCH_PREFIXES) or name.endswith(TEMP_SUFFIX)


def _has_own_writer(path: Path) -> bool:
    """A sub-folder claimed by its own medsyn writer: it holds a manifest, or only a lock (a run killed
    before its first write)."""
    if not path.is_dir() or path.is_symlink():
        return False
    return (path / OWNERSHIP_NAME).is_file() or os.listdir(path) == [LOCK_NAME]


def _describe(folder: Path, names: list[str]) -> str:
    """'patient01/, notes.txt and 3 more' (folders end with /)."""
    shown = [f"{name}/" if (folder / name).is_dir() else name for name in names[:_SHOWN_ENTRIES]]
    more = len(names) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more else "")


def _plain(value: Any) -> Any:
    """Settings as JSON types (tuples become lists, paths strings), so a recorded and a new run compare."""
    return json.loads(json.dumps(value, default=str))


def settings_differences(recorded: Any, requested: Any, *, prefix: str = "", run: str = "finished run") -> list[str]:
    """Every leaf where two settings trees differ, as ``"a.b: <recorded> (<run>) vs <requested> (this command)"``.

    Mappings recurse by key, lists of equal length by index (``models.cvae.hidden_dims[1]``); a key on one
    side only shows as ``<absent>``.
    """
    recorded, requested = _plain(recorded), _plain(requested)
    if isinstance(recorded, dict) and isinstance(requested, dict):
        lines = []
        for key in sorted(set(recorded) | set(requested), key=str):
            path = f"{prefix}.{key}" if prefix else str(key)
            if key not in recorded or key not in requested:
                old = json.dumps(recorded[key]) if key in recorded else "<absent>"
                new = json.dumps(requested[key]) if key in requested else "<absent>"
                lines.append(f"{path}: {old} ({run}) vs {new} (this command)")
            else:
                lines += settings_differences(recorded[key], requested[key], prefix=path, run=run)
        return lines
    if isinstance(recorded, list) and isinstance(requested, list) and len(recorded) == len(requested):
        lines = []
        for index, (old, new) in enumerate(zip(recorded, requested)):
            lines += settings_differences(old, new, prefix=f"{prefix}[{index}]", run=run)
        return lines
    if recorded == requested:
        return []
    return [f"{prefix or '<settings>'}: {json.dumps(recorded)} ({run}) vs {json.dumps(requested)} (this command)"]


def _check_directory_path(path: Path, what: str) -> None:
    """NotADirectoryError if ``path`` or the first existing folder above it is a file."""
    if path.exists():
        if not path.is_dir():
            raise NotADirectoryError(f"{what} {path}: expected a directory, found a file")
        return
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise NotADirectoryError(f"{what} {path}: expected a directory, but {parent} is a file")
            return


def _read_ownership(folder: Path, what: str) -> dict[str, Any] | None:
    path = folder / OWNERSHIP_NAME
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ValueError(
            f"{what} {folder}: its ownership manifest {path} cannot be read ({error}); medsyn will not write "
            f"into a folder whose contents it cannot account for: choose another {what}"
        ) from error
    valid = (
        isinstance(record, dict)
        and record.get("format") == OWNERSHIP_FORMAT
        and isinstance(record.get("writer"), str)
        and isinstance(record.get("entries"), list)
        and all(isinstance(name, str) for name in record["entries"])
    )
    if not valid:
        raise ValueError(
            f"{what} {folder}: {path} is not a medsyn ownership manifest (expected format {OWNERSHIP_FORMAT!r} "
            f"with 'writer' and 'entries'): choose another {what}"
        )
    return record


def check_output_folder(
    path: str | os.PathLike, *, writer: str, settings: Mapping[str, Any] | None = None, what: str = "output_dir",
    adopt: Sequence[str] = (),
) -> dict[str, Any] | None:
    """Read-only checks of an output folder (module doc); return its ownership record, None if new or empty.

    writer: the medsyn function that writes the folder ("train_generator", "export_png", ...).
    settings: the run's data-affecting settings (JSON types); None skips the settings comparison.
    what: the argument's name, used in messages ("output_dir", "out_dir").
    adopt: top-level names this run takes as its own (module doc); never refused as foreign.
    """
    folder = Path(path)
    _check_directory_path(folder, what)
    for name in adopt:
        if not name or Path(name).name != name or name in (OWNERSHIP_NAME, LOCK_NAME):
            raise ValueError(f"adopt: {name!r} is not a top-level entry name of {what} {folder}")
    if not folder.exists():
        return None
    names = sorted(name for name in os.listdir(folder) if name not in adopt)
    ownership = _read_ownership(folder, what)
    if ownership is None:
        found = [name for name in names if name != LOCK_NAME]
        if found:
            raise ForeignFolderError(
                f"{what} {folder} is not empty and medsyn did not write it (found {_describe(folder, found)}); "
                f"medsyn writes only into a new or empty folder or one it wrote itself (holding {OWNERSHIP_NAME}), "
                f"so nothing there is deleted or replaced: choose another {what}"
            )
        return None
    recorded = set(ownership["entries"])
    if ownership["writer"] != writer:
        raise ForeignFolderError(
            f"{what} {folder} holds the outputs of medsyn's {ownership['writer']} "
            f"({_describe(folder, sorted(recorded)) or 'no files yet'}), not of {writer}; {writer} writes only "
            f"into a new or empty folder or one {writer} wrote: choose another {what}"
        )
    unrecorded = [
        name
        for name in names
        if name not in recorded
        and name not in (OWNERSHIP_NAME, LOCK_NAME)
        and not _is_scratch(name)
        and not _has_own_writer(folder / name)
    ]
    if unrecorded:
        raise ForeignFolderError(
            f"{what} {folder} holds entries medsyn did not write: {_describe(folder, unrecorded)}; medsyn replaces "
            f"only what it wrote: move them out or choose another {what}"
        )
    if settings is not None:
        status = "finished" if ownership.get("status") == "finished" else "unfinished"
        differences = settings_differences(ownership.get("settings"), settings, run=f"{status} run")
        if differences:
            raise SettingsMismatchError(
                f"{what} {folder} holds {'an' if status == 'unfinished' else 'a'} {status} {writer} run made with other settings: "
                + "; ".join(differences)
                + f". medsyn never reuses or rewrites a run made with other data-affecting settings: give the "
                f"recorded settings to resume it, or choose another {what}"
            )
    return ownership


def _acquire_lock(folder: Path, what: str) -> int:
    """An fd holding an exclusive flock on ``folder/.medsyn.lock``; FolderInUseError if another run holds it."""
    lock_path = folder / LOCK_NAME
    busy = FolderInUseError(
        f"{what} {folder} is in use by another medsyn run (it holds the lock {lock_path}); wait for that run to "
        f"end or choose another {what}"
    )
    for _attempt in range(5):
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as error:
            raise OSError(error.errno, f"{error.strerror} while creating the lock file", str(lock_path)) from error
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise busy from None
        except OSError as error:
            os.close(fd)
            raise OSError(error.errno, f"{error.strerror} while locking", str(lock_path)) from error
        try:
            current = os.stat(lock_path)
        except FileNotFoundError:
            current = None
        held = os.fstat(fd)
        if current is not None and (current.st_ino, current.st_dev) == (held.st_ino, held.st_dev):
            return fd
        os.close(fd)  # a rolled-back run removed the file between our open and our lock: lock the new one
    raise busy


def _remove_leftovers(folder: Path, entries: list[str]) -> None:
    """Scratch folders at the top and atomic-write temp files under recorded entries (not in sub-folders
    that have their own writer: a run there may be writing them now)."""
    for name in os.listdir(folder):
        path = folder / name
        if name.startswith(_SCRATCH_PREFIXES) and path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif name.endswith(TEMP_SUFFIX) and path.is_file():
            path.unlink()
    for name in entries:
        top = folder / name
        if not top.is_dir() or top.is_symlink():
            continue
        for root, dirs, files in os.walk(top):
            dirs[:] = [d for d in dirs if not _has_own_writer(Path(root) / d)]
            for file in files:
                if file.endswith(TEMP_SUFFIX):
                    (Path(root) / file).unlink()


class OutputFolder:
    """A claimed output folder (use :func:`claim_output_folder`); records what the run writes into it."""

    def __init__(self, path: Path, writer: str, settings: Mapping[str, Any] | None, ownership: dict | None):
        self.path = path
        self.writer = writer
        self.settings = None if settings is None else _plain(settings)
        self.resolved = path.resolve()
        self.entries: set[str] = set(ownership["entries"]) if ownership else set()
        self.manifest_written = False

    def _write_manifest(self, status: str) -> None:
        write_json_atomic(
            self.path / OWNERSHIP_NAME,
            {
                "format": OWNERSHIP_FORMAT,
                "writer": self.writer,
                "settings": self.settings,
                "entries": sorted(self.entries),
                "status": status,
            },
        )
        self.manifest_written = True

    def record(self, target: Path) -> None:
        """Record the top-level entry of ``target`` (a path inside the folder) before it is written."""
        name = target.relative_to(self.resolved).parts[0]
        if name in (OWNERSHIP_NAME, LOCK_NAME):
            return
        new_entry = not _is_scratch(name) and name not in self.entries
        if new_entry:
            self.entries.add(name)
        if new_entry or not self.manifest_written:
            self._write_manifest("running")

    def scratch_folder(self, kind: str = "staging") -> Path:
        """A new empty folder ``.medsyn-<kind>-<random>`` inside this one (removed by the next run if left)."""
        if not self.manifest_written:
            self._write_manifest("running")
        return Path(tempfile.mkdtemp(prefix=f".medsyn-{kind}-", dir=self.path))

    def replace_entries(self, staging: Path) -> None:
        """Make the entries of ``staging`` (a scratch folder) this folder's entries.

        The recorded old entries are moved to a retired scratch folder, the staged ones moved in, then the
        retired folder is deleted: only what medsyn recorded writing is ever removed. A kill in between leaves
        scratch folders the next run removes.
        """
        staged = sorted(os.listdir(staging))
        retired = self.scratch_folder("retired")
        old = sorted(name for name in self.entries if (self.path / name).exists() or (self.path / name).is_symlink())
        self.entries |= set(staged)
        self._write_manifest("running")
        for name in old:
            os.replace(self.path / name, retired / name)
        for name in staged:
            os.replace(staging / name, self.path / name)
        self.entries = set(staged)
        self._write_manifest("running")
        shutil.rmtree(retired)
        staging.rmdir()


_claimed: list[OutputFolder] = []
_claimed_lock = threading.RLock()


def record_write(path: str | os.PathLike) -> None:
    """Called by the atomic writers before they write ``path``: records it in the innermost claimed folder
    of this process that contains it (nothing when no claimed folder does)."""
    if not _claimed:
        return
    target = Path(os.path.abspath(path)).resolve()
    with _claimed_lock:
        owners = [folder for folder in _claimed if target != folder.resolved and target.is_relative_to(folder.resolved)]
        if owners:
            max(owners, key=lambda folder: len(folder.resolved.parts)).record(target)


def _make_folder(path: Path) -> list[Path]:
    """mkdir -p; the folders it created, outermost first."""
    missing = []
    for candidate in (path, *path.parents):
        if candidate.exists():
            break
        missing.append(candidate)
    path.mkdir(parents=True, exist_ok=True)
    return missing[::-1]


def _undo_claim(path: Path, created: list[Path], lock_created: bool) -> None:
    """Leave no trace of a claim under which nothing was written: the lock file it created, the folders."""
    if lock_created:
        (path / LOCK_NAME).unlink(missing_ok=True)
    for folder in reversed(created):
        try:
            folder.rmdir()
        except OSError:  # not empty: something else appeared there; keep it
            break


@contextmanager
def claim_output_folder(
    path: str | os.PathLike, *, writer: str, settings: Mapping[str, Any] | None = None, what: str = "output_dir",
    adopt: Sequence[str] = (),
) -> Iterator[OutputFolder]:
    """Check (module doc), lock and clean ``path``, then record every atomic write under it while open.

    On success the manifest's status becomes "finished". A run that wrote nothing leaves no trace: the lock
    file and the folders the claim created are removed. ``adopt``: names recorded as entries at once.
    """
    folder_path = Path(path)
    check_output_folder(folder_path, writer=writer, settings=settings, what=what, adopt=adopt)
    created = _make_folder(folder_path)
    lock_created = not (folder_path / LOCK_NAME).exists()
    try:
        fd = _acquire_lock(folder_path, what)
    except BaseException:
        _undo_claim(folder_path, created, lock_created)
        raise
    folder: OutputFolder | None = None
    try:
        # again under the lock: a run that held it may have changed the folder since the first check
        ownership = check_output_folder(folder_path, writer=writer, settings=settings, what=what, adopt=adopt)
        folder = OutputFolder(folder_path, writer, settings, ownership)
        if ownership is not None:
            _remove_leftovers(folder_path, ownership["entries"])
        for name in adopt:
            if (folder_path / name).exists():
                folder.record(folder.resolved / name)
        with _claimed_lock:
            _claimed.append(folder)
        try:
            yield folder
        finally:
            with _claimed_lock:
                _claimed.remove(folder)
        if folder.manifest_written:
            folder._write_manifest("finished")
    finally:
        if folder is None or not folder.manifest_written:
            _undo_claim(folder_path, created, lock_created)
        os.close(fd)


def writes_output_folder(
    argument: str,
    *,
    writer: str | None = None,
    settings: Callable[[Mapping[str, Any]], Mapping[str, Any] | None] | None = None,
    adopt: Callable[[Mapping[str, Any]], Sequence[str]] | None = None,
) -> Callable[[FunctionT], FunctionT]:
    """Decorator: the call claims the folder its ``argument`` names (``claim_output_folder``) for its whole run.

    writer: defaults to the function's name. settings: bound arguments -> the run's data-affecting settings.
    adopt: bound arguments -> the names ``claim_output_folder`` adopts.
    """

    def decorate(function: FunctionT) -> FunctionT:
        signature = inspect.signature(function)
        name = writer or function.__name__

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            identity = None if settings is None else settings(bound.arguments)
            adopted = () if adopt is None else tuple(adopt(bound.arguments))
            with claim_output_folder(bound.arguments[argument], writer=name, settings=identity, what=argument,
                                     adopt=adopted):
                return function(*bound.args, **bound.kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
