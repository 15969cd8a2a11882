"""Output folders: refusals before any write (checksums unchanged), ownership recording, the flock lock (also
across processes and after a kill), leftover cleanup, and leaf-level settings differences."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from medsyn.io.atomic import write_bytes_atomic, write_json_atomic
from medsyn.io.output_folder import (
    LOCK_NAME,
    OWNERSHIP_NAME,
    FolderInUseError,
    ForeignFolderError,
    SettingsMismatchError,
    check_output_folder,
    claim_output_folder,
    settings_differences,
    writes_output_folder,
)

ROOT = Path(__file__).resolve().parents[2]


def tree_checksums(folder: Path) -> dict[str, str]:
    """relative path -> sha256 of every file under ``folder`` (folders as 'dir'), hidden files included."""
    return {
        str(path.relative_to(folder)): "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
    }


def _study(folder: Path) -> Path:
    (folder / "patient01").mkdir(parents=True)
    (folder / "patient01" / "scan.dcm").write_bytes(b"DICM" + bytes(range(200)))
    (folder / "notes.txt").write_text("do not delete")
    return folder


def _owned(folder: Path, writer: str = "w", settings=None) -> Path:
    with claim_output_folder(folder, writer=writer, settings=settings) as claimed:
        write_bytes_atomic(folder / "result.bin", b"1")
        write_bytes_atomic(folder / "figures" / "a.png", b"2")
        assert claimed.entries == {"result.bin", "figures"}
    return folder


def test_a_folder_medsyn_did_not_write_is_refused_naming_what_was_found(tmp_path):
    study = _study(tmp_path / "study")
    before = tree_checksums(study)
    with pytest.raises(ForeignFolderError) as refusal:
        with claim_output_folder(study, writer="generate_images", what="out_dir"):
            raise AssertionError("the body ran")
    message = str(refusal.value)
    assert message.startswith(f"out_dir {study} is not empty and medsyn did not write it (found notes.txt, patient01/)")
    assert isinstance(refusal.value, FileExistsError)
    assert tree_checksums(study) == before  # not even a lock file


def test_a_file_is_refused_as_expected_a_directory(tmp_path):
    path = tmp_path / "results.json"
    path.write_text("{}")
    with pytest.raises(NotADirectoryError, match=f"output_dir {path}: expected a directory, found a file"):
        check_output_folder(path, writer="w")
    with pytest.raises(NotADirectoryError, match=f"expected a directory, but {path} is a file"):
        check_output_folder(path / "below", writer="w")
    assert path.read_text() == "{}"


def test_writes_are_recorded_before_they_appear_and_the_run_is_marked_finished(tmp_path):
    folder = _owned(tmp_path / "run", settings={"seed": 0})
    record = json.loads((folder / OWNERSHIP_NAME).read_text())
    assert record == {
        "format": "medsyn-outputs-v1",
        "writer": "w",
        "settings": {"seed": 0},
        "entries": ["figures", "result.bin"],
        "status": "finished",
    }
    seen = []

    def body():
        with claim_output_folder(folder, writer="w", settings={"seed": 0}):
            write_bytes_atomic(folder / "late.bin", b"3")
            seen.append(json.loads((folder / OWNERSHIP_NAME).read_text()))
            raise KeyboardInterrupt  # a killed run keeps what it recorded

    with pytest.raises(KeyboardInterrupt):
        body()
    assert seen[0]["entries"] == ["figures", "late.bin", "result.bin"] and seen[0]["status"] == "running"
    assert json.loads((folder / OWNERSHIP_NAME).read_text())["status"] == "running"
    check_output_folder(folder, writer="w", settings={"seed": 0})  # a re-run resumes


def test_another_writers_folder_and_unrecorded_entries_are_refused(tmp_path):
    folder = _owned(tmp_path / "run", writer="train_generator")
    before = tree_checksums(folder)
    with pytest.raises(ForeignFolderError, match=r"holds the outputs of medsyn's train_generator \(figures/, result.bin\), not of generate_images"):
        with claim_output_folder(folder, writer="generate_images", what="out_dir"):
            pass
    (folder / "notes.txt").write_text("mine")
    before = tree_checksums(folder)
    with pytest.raises(ForeignFolderError, match=r"holds entries medsyn did not write: notes.txt; medsyn replaces only what it wrote"):
        with claim_output_folder(folder, writer="train_generator"):
            pass
    assert tree_checksums(folder) == before
    # a sub-folder with its own writer (synthetic/ inside a training run) is not a stranger
    (folder / "notes.txt").unlink()
    _owned(folder / "synthetic", writer="generate_images")
    check_output_folder(folder, writer="train_generator")


def test_other_settings_are_refused_naming_every_leaf_and_nothing_changes(tmp_path):
    recorded = {"seed": 0, "per_class": 6, "model_config": {"latent_dim": 16, "hidden_dims": [4, 8]}}
    folder = _owned(tmp_path / "run", settings=recorded)
    before = tree_checksums(folder)
    requested = {"seed": 1, "per_class": 6, "model_config": {"latent_dim": 32, "hidden_dims": [4, 16]}}
    with pytest.raises(SettingsMismatchError) as refusal:
        with claim_output_folder(folder, writer="w", settings=requested):
            pass
    message = str(refusal.value)
    assert f"output_dir {folder} holds a finished w run made with other settings: " in message
    assert (
        "model_config.hidden_dims[1]: 8 (finished run) vs 16 (this command); "
        "model_config.latent_dim: 16 (finished run) vs 32 (this command); "
        "seed: 0 (finished run) vs 1 (this command)."
    ) in message
    assert "per_class" not in message
    assert tree_checksums(folder) == before


def test_settings_differences_names_absent_keys_and_unequal_lists():
    assert settings_differences({"a": {"b": 1}}, {"a": {"b": 1}}) == []
    assert settings_differences({"a": {"b": 1}}, {"a": {}}, run="unfinished run") == [
        "a.b: 1 (unfinished run) vs <absent> (this command)"
    ]
    assert settings_differences({"dims": [1, 2]}, {"dims": [1, 2, 3]}) == [
        "dims: [1, 2] (finished run) vs [1, 2, 3] (this command)"
    ]
    assert settings_differences({"x": (1, 2)}, {"x": [1, 2]}) == []  # tuples and lists are one JSON type
    assert settings_differences({"data": {"kind": "digits"}}, {"data": None}) == [
        'data: {"kind": "digits"} (finished run) vs null (this command)'
    ]


def test_a_second_run_fails_at_once_while_the_first_holds_the_folder(tmp_path):
    folder = tmp_path / "run"
    with claim_output_folder(folder, writer="w"):
        write_bytes_atomic(folder / "a.bin", b"1")
        before = tree_checksums(folder)
        started = time.perf_counter()
        with pytest.raises(FolderInUseError, match=f"output_dir {folder} is in use by another medsyn run"):
            with claim_output_folder(folder, writer="w"):
                raise AssertionError("two runs in one folder")
        assert time.perf_counter() - started < 1.0
        assert tree_checksums(folder) == before
    with claim_output_folder(folder, writer="w"):  # released on exit
        pass


_HOLD_LOCK = """
import sys, time
from medsyn.io.atomic import write_bytes_atomic
from medsyn.io.output_folder import claim_output_folder
with claim_output_folder(sys.argv[1], writer="w"):
    write_bytes_atomic(sys.argv[1] + "/a.bin", b"1")
    print("holding", flush=True)
    time.sleep(120)
"""


def test_the_lock_holds_across_processes_and_dies_with_a_killed_run(tmp_path):
    folder = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(folder)], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(FolderInUseError, match="in use by another medsyn run"):
            with claim_output_folder(folder, writer="w"):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    assert (folder / LOCK_NAME).is_file()  # the file stays; the kernel dropped the lock with the process
    with claim_output_folder(folder, writer="w") as claimed:
        assert claimed.entries == {"a.bin"}


def test_leftovers_of_a_killed_run_are_removed_by_the_next_run(tmp_path):
    folder = _owned(tmp_path / "run")
    staging = folder / ".medsyn-staging-x1y2"
    (staging / "0").mkdir(parents=True)
    (staging / "0" / "00000.png").write_bytes(b"partial")
    (folder / ".medsyn-retired-abc").mkdir()
    (folder / ".result.bin.k3j2.medsyn-tmp").write_bytes(b"torn")
    (folder / "figures" / ".a.png.zz.medsyn-tmp").write_bytes(b"torn")
    nested = _owned(folder / "synthetic", writer="generate_images")
    (nested / ".x.medsyn-tmp").write_bytes(b"belongs to the nested writer")
    with claim_output_folder(folder, writer="w"):
        pass
    assert sorted(p.name for p in folder.iterdir()) == [
        OWNERSHIP_NAME, LOCK_NAME, "figures", "result.bin", "synthetic"
    ]
    assert sorted(p.name for p in (folder / "figures").iterdir()) == ["a.png"]
    assert (nested / ".x.medsyn-tmp").is_file()


def test_a_run_that_wrote_nothing_leaves_no_trace(tmp_path):
    target = tmp_path / "a" / "b"
    with pytest.raises(ValueError, match="bad input"):
        with claim_output_folder(target, writer="w"):
            raise ValueError("bad input")
    assert list(tmp_path.iterdir()) == []
    empty = tmp_path / "empty"
    empty.mkdir()
    with claim_output_folder(empty, writer="w"):
        pass
    assert list(empty.iterdir()) == []


def test_replace_entries_removes_only_what_was_recorded(tmp_path):
    folder = tmp_path / "set"
    with claim_output_folder(folder, writer="w") as claimed:
        staging = claimed.scratch_folder()
        write_bytes_atomic(staging / "0" / "00000.png", b"old")
        write_bytes_atomic(staging / "gone" / "00000.png", b"old")
        claimed.replace_entries(staging)
    nested = _owned(folder / "keep", writer="other")
    with claim_output_folder(folder, writer="w") as claimed:
        staging = claimed.scratch_folder()
        write_bytes_atomic(staging / "0" / "00000.png", b"new")
        claimed.replace_entries(staging)
    assert sorted(p.name for p in folder.iterdir()) == [OWNERSHIP_NAME, LOCK_NAME, "0", "keep"]
    assert (folder / "0" / "00000.png").read_bytes() == b"new"
    assert (nested / "result.bin").read_bytes() == b"1"
    assert json.loads((folder / OWNERSHIP_NAME).read_text())["entries"] == ["0"]


def test_an_unreadable_ownership_manifest_is_refused(tmp_path):
    folder = _owned(tmp_path / "run")
    (folder / OWNERSHIP_NAME).write_text("{not json")
    with pytest.raises(ValueError, match=f"its ownership manifest {folder / OWNERSHIP_NAME} cannot be read"):
        check_output_folder(folder, writer="w")
    write_json_atomic(folder / OWNERSHIP_NAME, {"format": "other"})
    with pytest.raises(ValueError, match="is not a medsyn ownership manifest"):
        check_output_folder(folder, writer="w")


def test_the_decorator_claims_the_named_argument_with_the_settings_of_the_call(tmp_path):
    @writes_output_folder("out_dir", settings=lambda arguments: {"seed": arguments["seed"]})
    def export(out_dir, *, seed=0):
        return write_bytes_atomic(Path(out_dir) / "x.bin", str(seed).encode())

    export(tmp_path / "out")
    record = json.loads((tmp_path / "out" / OWNERSHIP_NAME).read_text())
    assert record["writer"] == "export" and record["settings"] == {"seed": 0}
    with pytest.raises(SettingsMismatchError, match=r"out_dir .* seed: 0 \(finished run\) vs 2 \(this command\)"):
        export(tmp_path / "out", seed=2)
    assert (tmp_path / "out" / "x.bin").read_bytes() == b"0"
    assert os.listdir(tmp_path) == ["out"]
