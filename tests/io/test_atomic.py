"""Atomic writers: a failed write (disk full) names the file, leaves the old file and no temporary behind."""

import errno
import os

import pytest

import medsyn.io.atomic as atomic
from medsyn.io.atomic import write_bytes_atomic, write_json_atomic


def _disk_full(monkeypatch):
    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(atomic.os, "fsync", full)


def test_disk_full_names_the_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    target = tmp_path / "results.json"
    write_json_atomic(target, {"old": 1})
    before = target.read_bytes()
    _disk_full(monkeypatch)
    with pytest.raises(OSError) as failure:
        write_json_atomic(target, {"new": 2})
    assert failure.value.errno == errno.ENOSPC
    assert failure.value.filename == str(target)
    assert f"No space left on device while writing {target} (" in str(failure.value)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]  # no temporary left


def test_a_folder_that_is_a_file_names_the_path(tmp_path):
    (tmp_path / "figures").write_text("a file where a folder should be")
    with pytest.raises(OSError) as failure:
        write_bytes_atomic(tmp_path / "figures" / "radar.png", b"png")
    assert failure.value.filename == str(tmp_path / "figures" / "radar.png")
    assert "while writing" in str(failure.value)
