import json

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from medsyn.data.image_set import ImageSet
from medsyn.data.sources import prepare_splits
from medsyn.data.split import (
    apply_split,
    load_split_manifest,
    make_split_manifest,
    save_split_manifest,
)


def _labels(counts):
    return np.repeat(np.arange(len(counts)), counts)


def _image_set(labels, source="toy"):
    n = len(labels)
    images = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 1, 2, 2) / max(n, 1)
    return ImageSet(images.contiguous(), torch.as_tensor(labels, dtype=torch.int64),
                    tuple(str(c) for c in range(int(max(labels)) + 1)), source)


def test_every_item_in_exactly_one_split():
    labels = _labels([100, 37, 12, 1, 2])
    manifest = make_split_manifest(labels, seed=3)
    everything = manifest.train + manifest.val + manifest.test
    assert sorted(everything) == list(range(len(labels)))


def test_stratified_counts_per_class():
    labels = _labels([100, 50, 20])
    manifest = make_split_manifest(labels, seed=0)
    # round(n * 0.1) to val and to test, the rest to train, per class
    assert manifest.class_counts == {"train": [80, 40, 16], "val": [10, 5, 2], "test": [10, 5, 2]}
    for split in ("train", "val", "test"):
        counts = np.bincount(labels[manifest.indices(split)], minlength=3).tolist()
        assert counts == manifest.class_counts[split]


def test_tiny_classes_go_to_train():
    manifest = make_split_manifest(_labels([1, 2, 3]), seed=0)
    assert manifest.class_counts["train"] == [1, 2, 3]


def test_reproducible_with_seed_and_different_across_seeds():
    labels = _labels([60, 60, 60])
    a = make_split_manifest(labels, seed=7, per_class=5)
    b = make_split_manifest(labels, seed=7, per_class=5)
    c = make_split_manifest(labels, seed=8, per_class=5)
    assert (a.train, a.val, a.test) == (b.train, b.val, b.test)
    assert (a.train, a.val, a.test) != (c.train, c.val, c.test)


def test_per_class_subsamples_train_only():
    labels = _labels([50, 30])
    full = make_split_manifest(labels, seed=1)
    scarce = make_split_manifest(labels, seed=1, per_class=4)
    assert scarce.class_counts["train"] == [4, 4]
    assert set(scarce.train) <= set(full.train)
    assert scarce.val == full.val and scarce.test == full.test
    assert np.bincount(labels[scarce.train]).tolist() == [4, 4]


def test_per_class_too_large_names_argument_and_class():
    with pytest.raises(ValueError, match=r"per_class=30 .*class '1' has only 24"):
        make_split_manifest(_labels([50, 30]), seed=0, per_class=30)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"fractions": (0.5, 0.5, 0.5)}, "fractions"),
        ({"fractions": (0.0, 0.5, 0.5)}, "fractions"),
        ({"fractions": (0.8, 0.2)}, "fractions"),
        ({"fractions": (0.8, float("nan"), 0.1)}, "fractions"),
        ({"per_class": 0}, "per_class"),
        ({"per_class": 2.5}, "per_class"),
        ({"seed": 1.5}, "seed"),
    ],
)
def test_bad_arguments(kwargs, match):
    kwargs = {"seed": 0, **kwargs}
    with pytest.raises(ValueError, match=match):
        make_split_manifest(_labels([10, 10]), **kwargs)


@pytest.mark.parametrize("labels", [[], [[0, 1]], [0.5, 1.0], [-1, 0]])
def test_bad_labels(labels):
    with pytest.raises(ValueError, match="labels"):
        make_split_manifest(np.asarray(labels), seed=0)


def test_save_load_roundtrip(tmp_path):
    manifest = make_split_manifest(_labels([20, 20]), seed=2, per_class=3, source="toy",
                                   skipped=[{"file": "a.png", "reason": "broken"}])
    path = save_split_manifest(manifest, tmp_path / "sub" / "manifest.json")
    record = json.loads(path.read_text())
    assert record["num_skipped"] == 1 and record["skipped"][0]["file"] == "a.png"
    loaded = load_split_manifest(path)
    assert loaded == manifest


def test_load_rejects_item_in_two_splits(tmp_path):
    manifest = make_split_manifest(_labels([20, 20]), seed=2)
    path = save_split_manifest(manifest, tmp_path / "manifest.json")
    record = json.loads(path.read_text())
    record["test"].append(record["train"][0])
    path.write_text(json.dumps(record))
    with pytest.raises(ValueError, match=r"manifest.json.*item \d+ is in both 'train' and 'test'"):
        load_split_manifest(path)


def test_load_rejects_out_of_range_and_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.json"):
        load_split_manifest(tmp_path / "nope.json")
    manifest = make_split_manifest(_labels([5, 5]), seed=0)
    path = save_split_manifest(manifest, tmp_path / "m.json")
    record = json.loads(path.read_text())
    record["val"].append(10)
    path.write_text(json.dumps(record))
    with pytest.raises(ValueError, match=r"m.json.*index 10 outside"):
        load_split_manifest(path)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_split_manifest(path)
    path.write_text("{}")
    with pytest.raises(ValueError, match="lacks keys"):
        load_split_manifest(path)


def test_apply_split_subsets_and_checks_source():
    labels = _labels([30, 20])
    image_set = _image_set(labels)
    manifest = make_split_manifest(labels, seed=0, source="toy", class_names=image_set.class_names)
    parts = apply_split(image_set, manifest)
    assert set(parts) == {"train", "val", "test"}
    for name, part in parts.items():
        np.testing.assert_array_equal(part.labels.numpy(), labels[manifest.indices(name)])
        torch.testing.assert_close(part.images, image_set.images[manifest.indices(name)])
    with pytest.raises(ValueError, match="made for 50 items"):
        apply_split(_image_set(_labels([30, 21])), manifest)
    with pytest.raises(ValueError, match="source 'toy'"):
        apply_split(_image_set(labels, source="other"), manifest)


def test_prepare_splits_writes_manifest(tmp_path):
    path = tmp_path / "split_manifest.json"
    parts = prepare_splits("digits", {"size": 8}, seed=0, per_class=3, manifest_path=path)
    per_class_counts = np.bincount(load_digits().target)
    held_out = int(sum(round(n * 0.1) for n in per_class_counts))
    assert [len(parts[name]) for name in ("train", "val", "test")] == [30, held_out, held_out]
    manifest = load_split_manifest(path)
    assert manifest.source == "sklearn-digits" and manifest.strategy == "stratified"
    again = prepare_splits("digits", {"size": 8}, seed=0, per_class=3)
    torch.testing.assert_close(again["train"].images, parts["train"].images)


def test_unknown_source_and_bad_options():
    with pytest.raises(ValueError, match="unknown data source kind 'nope'.*digits"):
        prepare_splits("nope", {}, seed=0)
    with pytest.raises(ValueError, match="'digits': bad options.*sizee"):
        prepare_splits("digits", {"sizee": 8}, seed=0)


def test_prepare_splits_reuses_an_existing_manifest(tmp_path):
    from PIL import Image

    root = tmp_path / "images"
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        for index in range(10):
            Image.fromarray(rng.integers(0, 256, (4, 4), dtype=np.uint8)).save(root / name / f"{index}.png")
    first = prepare_splits("image_folder", {"path": str(root), "channels": 1}, seed=0, per_class=3,
                           manifest_path=tmp_path / "m.json")
    again = prepare_splits("image_folder", {"path": str(root), "channels": 1}, seed=99,
                           existing_manifest=tmp_path / "m.json")
    for name in ("train", "val", "test"):
        torch.testing.assert_close(again[name].images, first[name].images)
    # a file replaced by another name: same count, different items -> refused, naming the difference
    (root / "a" / "3.png").rename(root / "a" / "3b.png")
    with pytest.raises(ValueError, match=r"m.json does not match .*'a/3.png' -> 'a/3b.png'"):
        prepare_splits("image_folder", {"path": str(root), "channels": 1}, seed=0,
                       existing_manifest=tmp_path / "m.json")
    (root / "a" / "3b.png").rename(root / "a" / "3.png")
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(root / "b" / "new.png")
    with pytest.raises(ValueError, match="does not match .*20 -> 21 items"):
        prepare_splits("image_folder", {"path": str(root), "channels": 1}, seed=0,
                       existing_manifest=tmp_path / "m.json")


def test_rounding_is_half_up_for_small_classes():
    # 5 items x 0.1 = 0.5 -> one val and one test item (round() would give 0 by rounding to even)
    assert make_split_manifest(_labels([5, 15, 25]), seed=0).class_counts == {
        "train": [3, 11, 19], "val": [1, 2, 3], "test": [1, 2, 3]
    }


def test_groups_kept_whole_and_stratified():
    labels = np.repeat([0, 1], 40)
    groups = [f"file{i // 4}" for i in range(80)]  # 10 files of 4 frames per class
    manifest = make_split_manifest(labels, seed=5, groups=groups)
    assert manifest.class_counts == {"train": [32, 32], "val": [4, 4], "test": [4, 4]}
    for name in ("train", "val", "test"):
        for other in ("train", "val", "test"):
            if name != other:
                ours = {groups[i] for i in manifest.indices(name)}
                assert not ours & {groups[i] for i in manifest.indices(other)}
    with pytest.raises(ValueError, match="groups has 3 entries"):
        make_split_manifest(labels, seed=0, groups=["a", "b", "c"])


def test_prepare_splits_warns_about_empty_splits(tmp_path):
    from PIL import Image

    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        for index in range(2):
            pixels = np.full((4, 4), 40 * index + (name == "b"), np.uint8)
            Image.fromarray(pixels).save(tmp_path / name / f"{index}.png")
    with pytest.warns(UserWarning, match=r"split\(s\) \['val', 'test'\] are empty"):
        prepare_splits("image_folder", {"path": str(tmp_path), "channels": 1}, seed=0)
