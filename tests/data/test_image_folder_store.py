"""read_image_folder(store=True): the same set as in memory, decoded once, rebuilt when a file changes."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from PIL import Image

from medsyn.data import image_folder_store
from medsyn.data.image_folder import read_image_folder
from medsyn.data.sources import draw_splits
from medsyn.data.stored_images import image_tensor


def _folder(root, side=20, per_class=4, classes=("a", "b", "c")):
    rng = np.random.default_rng(1)
    for name in classes:
        (root / name).mkdir(parents=True)
        for index in range(per_class):
            Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8), "RGB").save(
                root / name / f"patient{index}_{name}.png")
    return root


def _same(a, b):
    assert torch.equal(image_tensor(a.sets.images), image_tensor(b.sets.images))
    assert torch.equal(a.sets.labels, b.sets.labels)
    assert a.sets.class_names == b.sets.class_names and a.item_ids == b.item_ids and a.groups == b.groups


@pytest.mark.parametrize("size", [None, 20, 12])
def test_store_gives_the_in_memory_set_and_reuses_it(tmp_path, size, monkeypatch):
    root = _folder(tmp_path / "data")
    in_memory = read_image_folder(root, size=size)
    stored = read_image_folder(root, size=size, store=True, cache_dir=tmp_path / "cache")
    assert stored.sets.stored  # the pixels stay on disk
    _same(in_memory, stored)  # exact: uint8 at the images' own size, float32 for resampled ones
    calls = []
    real_decode = image_folder_store.decode_image
    monkeypatch.setattr(image_folder_store, "decode_image",
                        lambda *a, **k: calls.append(1) or real_decode(*a, **k))
    again = read_image_folder(root, size=size, store=True, cache_dir=tmp_path / "cache")
    _same(stored, again)
    assert calls == ([1] if size is None else [])  # only the first image's shape is read when size is None


def test_changed_added_and_removed_files_rebuild(tmp_path):
    root = _folder(tmp_path / "data")
    cache = tmp_path / "cache"
    read_image_folder(root, size=16, store=True, cache_dir=cache)
    changed = root / "a" / "patient0_a.png"
    Image.fromarray(np.full((20, 20, 3), 7, np.uint8), "RGB").save(changed)
    os.utime(changed, ns=(1, 1))
    Image.fromarray(np.full((20, 20, 3), 99, np.uint8), "RGB").save(root / "b" / "new.png")
    (root / "c" / "patient3_c.png").unlink()
    stored = read_image_folder(root, size=16, store=True, cache_dir=cache)
    _same(read_image_folder(root, size=16), stored)
    assert len(stored.sets) == 12


def test_store_refuses_skip_and_names_a_duplicate(tmp_path):
    root = _folder(tmp_path / "data")
    with pytest.raises(ValueError, match=r"on_error='skip' cannot be used with store: true"):
        read_image_folder(root, store=True, on_error="skip", cache_dir=tmp_path / "cache")
    (root / "b" / "copy.png").write_bytes((root / "a" / "patient0_a.png").read_bytes())
    with pytest.raises(ValueError, match=r"copy\.png: same bytes as .*patient0_a\.png \(duplicate image\)"):
        read_image_folder(root, store=True, cache_dir=tmp_path / "cache")
    with pytest.raises(ValueError, match="store_dtype must be one of"):
        read_image_folder(root, store=True, store_dtype="int8", cache_dir=tmp_path / "cache")


def test_subject_groups_and_splits_are_those_of_the_in_memory_path(tmp_path):
    root = _folder(tmp_path / "data", per_class=6)
    options = {"path": str(root), "size": 16, "subject_pattern": r"patient\d+"}
    memory, memory_manifest = draw_splits("image_folder", options, seed=3)
    stored, stored_manifest = draw_splits("image_folder", {**options, "store": True,
                                                            "cache_dir": str(tmp_path / "cache")}, seed=3)
    for name in ("train", "val", "test"):
        assert stored[name].stored and not memory[name].stored  # the split is a view of the store
        assert torch.equal(memory[name].images, image_tensor(stored[name].images))
    assert (memory_manifest.train, memory_manifest.val, memory_manifest.test) == (
        stored_manifest.train, stored_manifest.val, stored_manifest.test)
    assert memory_manifest.item_ids == stored_manifest.item_ids
    assert memory_manifest.group_counts == stored_manifest.group_counts


def test_the_store_holds_no_file_or_folder_name(tmp_path):
    root = _folder(tmp_path / "data_of_Jane_Doe")
    cache = tmp_path / "cache"
    read_image_folder(root, size=16, store=True, cache_dir=cache)
    for path in cache.rglob("*"):
        assert "patient" not in path.name and "Jane" not in path.name
        if path.is_file():
            data = path.read_bytes()
            assert b"patient" not in data and b"Jane" not in data
