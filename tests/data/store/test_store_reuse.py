"""build_store reuses a store without decoding when nothing changed, and rebuilds it when a file is
changed, added or removed, or when the labels, options or fingerprint scheme differ."""

from __future__ import annotations

import json
import os

import numpy as np
import torch

from medsyn.data.store import open_store
from medsyn.data.store.manifest import MANIFEST_NAME


def test_first_build_decodes_every_item_once(source):
    build = source.build()
    assert not build.reused and build.reason == "new store" and build.changes is None
    assert source.decode_calls == 10
    store = build.store
    assert len(store) == 10 and store.image_shape == (3, 16, 16) and store.class_names == ("benign", "malignant")
    assert torch.equal(store.labels, torch.tensor(source.labels))
    assert store.storage_dtype == "uint8" and store.exact


def test_second_build_with_same_files_and_options_decodes_nothing(source):
    first = source.build()
    source.decode_calls = 0
    second = source.build()
    assert second.reused and source.decode_calls == 0
    assert second.store.path == first.store.path
    assert second.store.manifest.build_id == first.store.manifest.build_id
    assert torch.equal(second.store.read(range(10)), first.store.read(range(10)))


def test_changed_file_rebuilds_and_names_it(source):
    source.build()
    source.rewrite(3, np.zeros((3, 16, 16), dtype=np.uint8))
    source.decode_calls = 0
    build = source.build()
    assert not build.reused and source.decode_calls == 10
    assert build.changes.new_or_changed == ("malignant/img_003.npy",) and build.changes.gone_or_changed == 1
    assert "malignant/img_003.npy" in build.reason and "1 recorded file(s) gone or changed" in build.reason
    assert torch.equal(build.store.read([3]), torch.zeros(1, 3, 16, 16))


def test_added_file_rebuilds(source):
    source.build()
    source.add(np.full((3, 16, 16), 255, dtype=np.uint8), 0, "late.npy")
    build = source.build()
    assert not build.reused and len(build.store) == 11
    assert build.changes.new_or_changed == ("benign/late.npy",) and build.changes.gone_or_changed == 0
    assert torch.equal(build.store.read([10]), torch.ones(1, 3, 16, 16))


def test_removed_file_rebuilds(source):
    source.build()
    source.remove(0)
    source.decode_calls = 0
    build = source.build()
    assert not build.reused and source.decode_calls == 9 and len(build.store) == 9
    assert build.changes.new_or_changed == () and build.changes.gone_or_changed == 1
    assert build.reason == "rebuilt: 1 recorded file(s) gone or changed; item count 10 -> 9"


def test_changed_options_build_another_store_and_keep_the_first(source):
    first = source.build()
    source.decode_calls = 0
    other = source.build(options={"size": 16, "channels": 3, "window": [0, 1]})
    assert not other.reused and other.reason == "new store" and source.decode_calls == 10
    assert other.store.path != first.store.path
    assert other.store.manifest.options == {"size": 16, "channels": 3, "window": [0, 1]}
    assert open_store(first.store.path).manifest.build_id == first.store.manifest.build_id
    source.decode_calls = 0
    assert source.build().reused and source.decode_calls == 0  # the first options' store is still there


def test_equal_options_in_another_order_reuse(source):
    source.build(options={"size": 16, "channels": 3})
    assert source.build(options={"channels": 3, "size": 16}).reused


def test_changed_labels_rebuild(source):
    source.build()
    labels = list(source.labels)
    labels[0] = 1 - labels[0]
    build = source.build(labels=labels)
    assert not build.reused and build.reason == "rebuilt: labels or item order changed"
    assert int(build.store.labels[0]) == labels[0]


def test_changed_item_order_rebuilds(source):
    source.build()
    order = list(range(10))[::-1]
    build = source.build(
        files=[source.files[i] for i in order], labels=[source.labels[i] for i in order],
        decode=lambda i: source.decode(order[i]),
    )
    assert not build.reused and build.reason == "rebuilt: labels or item order changed"
    assert torch.equal(build.store.read([0]), torch.from_numpy(source.decoded(9))[None])


def test_content_hash_ignores_a_touched_but_unchanged_file(source):
    source.build(content_hash=True)
    stat = source.files[2].stat()
    os.utime(source.files[2], ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    source.decode_calls = 0
    assert source.build(content_hash=True).reused and source.decode_calls == 0
    rebuilt = source.build()  # by mtime it changed (and the scheme differs from the recorded one)
    assert not rebuilt.reused and "fingerprinted by stat, the store by content" in rebuilt.reason


def test_items_may_share_a_file(source):
    """Two items (e.g. slices of one volume) from each of the first five files."""
    files = source.files[:5]
    build = source.build(
        files=files, labels=[0, 1] * 5, item_files=[i // 2 for i in range(10)],
        decode=lambda i: source.decode(i // 2),
    )
    assert len(build.store) == 10
    assert torch.equal(build.store.read([4, 5]), torch.from_numpy(np.stack([source.decoded(2)] * 2)))


def test_manifest_records_inputs_but_no_file_name(tmp_path, make_source):
    root = tmp_path / "Study_SMITH_John_1962"
    source = make_source(root, tmp_path / "cache", count=4)
    source.add(np.zeros((3, 16, 16), dtype=np.uint8), 0, "ACC123456_Jane_Doe.npy")
    build = source.build()
    folder = build.store.path
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    assert manifest["format"] == "medsyn-image-store-v1"
    assert manifest["options"] == {"size": 16, "channels": 3}
    assert manifest["source_files"]["scheme"] == "stat" and len(manifest["source_files"]["digests"]) == 5
    assert manifest["dtype"] == {"requested": "auto", "stored": "uint8", "max_abs_error": 0.0}
    identifiers = ["SMITH", "John", "1962", "ACC123456", "Jane", "img_000", str(root), str(tmp_path)]
    identifiers += [str(path.stat().st_mtime_ns) for path in source.files]
    for path in folder.iterdir():
        data = path.read_bytes()
        found = [word for word in identifiers if word.encode() in data]
        assert not found, f"{path.name} contains {found}"
    assert not any(word in folder.name for word in identifiers)
    assert manifest["class_names"] == ["benign", "malignant"]  # the data set's labels, as an ImageSet has them
