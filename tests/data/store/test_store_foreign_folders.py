"""medsyn never uses, replaces or deletes a folder it did not write; it replaces its own stores of
another format, and removes only its own leftovers of the store it builds."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from medsyn.data.store import ForeignStoreFolderError, StoreFormatError, open_store
from medsyn.data.store.manifest import MANIFEST_NAME


def _store_folder(source):
    """The folder the source's store has, found by building it once and removing it again."""
    folder = source.build().store.path
    shutil.rmtree(folder)
    return folder


def test_a_foreign_folder_at_the_store_path_is_refused_and_left_alone(source):
    folder = _store_folder(source)
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(ForeignStoreFolderError, match=f"image store folder {folder} exists but is not a medsyn store "
                                                     r"\(found notes.txt"):
        source.build()
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]


def test_an_empty_folder_at_the_store_path_is_refused(source):
    folder = _store_folder(source)
    folder.mkdir()
    with pytest.raises(ForeignStoreFolderError, match="found nothing"):
        source.build()
    assert folder.is_dir()


def test_a_store_with_an_added_file_is_refused_and_nothing_is_deleted(source):
    folder = source.build().store.path
    (folder / "extra.csv").write_text("a,b\n")
    source.rewrite(0, np.zeros((3, 16, 16), dtype=np.uint8))  # the store is stale: a build would replace it
    with pytest.raises(ForeignStoreFolderError, match="extra.csv"):
        source.build()
    assert (folder / "extra.csv").read_text() == "a,b\n" and (folder / MANIFEST_NAME).exists()


def test_a_manifest_of_another_tool_is_refused(source):
    folder = source.build().store.path
    (folder / MANIFEST_NAME).write_text(json.dumps({"format": "other-tool-v3"}))
    with pytest.raises(ForeignStoreFolderError, match="is not a medsyn store manifest"):
        source.build()
    (folder / MANIFEST_NAME).write_text("{not json")
    with pytest.raises(ForeignStoreFolderError, match="cannot be read as JSON"):
        open_store(folder)


def test_a_medsyn_store_of_another_format_is_rebuilt(source):
    folder = source.build().store.path
    record = json.loads((folder / MANIFEST_NAME).read_text())
    record["format"] = "medsyn-image-store-v0"
    (folder / MANIFEST_NAME).write_text(json.dumps(record))
    with pytest.raises(StoreFormatError, match="medsyn-image-store-v0"):
        open_store(folder)
    source.decode_calls = 0
    build = source.build()
    assert not build.reused and "medsyn-image-store-v0" in build.reason and source.decode_calls == 10
    assert build.store.path == folder and build.store.manifest.build_id != record["build_id"]


def test_a_cache_dir_that_is_a_file_is_refused(source):
    source.cache.parent.mkdir(parents=True, exist_ok=True)
    source.cache.write_text("")
    with pytest.raises(NotADirectoryError, match=f"cache_dir {source.cache}: expected a folder"):
        source.build()


def test_leftovers_of_other_stores_and_other_tools_are_kept(source):
    source.cache.mkdir(parents=True)
    kept = [
        ".fake_folder-0123456789abcdef0123456789abcdef.medsyn-build-abc",  # another store's build may be running
        ".medsyn-build-xyz",
        "my-notes",
    ]
    for name in kept:
        (source.cache / name).mkdir()
    store = source.build().store.path
    mine = source.cache / f".{store.name}.medsyn-build-left"
    mine.mkdir()
    source.build()
    assert not mine.exists()
    assert all((source.cache / name).is_dir() for name in kept)
