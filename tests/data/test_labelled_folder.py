"""External synthetic folder + labels CSV: pixel values, label resolution and the errors bad input raises."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from medsyn.data.labelled_folder import load_labelled_folder

CLASSES = ("cat", "dog", "fox")


def _write(folder, name, array):
    Image.fromarray(array).save(folder / name)


def _make(tmp_path, rows, size=8, mode="L"):
    rng = np.random.default_rng(0)
    arrays = {}
    for filename, _label in rows:
        shape = (size, size) if mode == "L" else (size, size, 3)
        arrays[filename] = rng.integers(0, 256, size=shape, dtype=np.uint8)
        _write(tmp_path, filename, arrays[filename])
    lines = ["filename,label"] + [f"{f},{label}" for f, label in rows]
    (tmp_path / "labels.csv").write_text("\n".join(lines) + "\n")
    return arrays


def test_reads_pixels_and_resolves_names_and_indices(tmp_path):
    arrays = _make(tmp_path, [("a.png", "dog"), ("b.png", "2"), ("c.png", "cat")])
    result = load_labelled_folder(tmp_path, tmp_path / "labels.csv", class_names=CLASSES, image_shape=(1, 8, 8))
    assert result.labels.tolist() == [1, 2, 0]
    assert result.images.shape == (3, 1, 8, 8)
    expected = torch.from_numpy(arrays["b.png"].astype(np.float32) / 255.0)
    assert torch.equal(result.images[1, 0], expected)
    assert result.class_names == CLASSES


def test_rgb_images_keep_three_channels(tmp_path):
    arrays = _make(tmp_path, [("a.png", "fox")], mode="RGB")
    result = load_labelled_folder(tmp_path, tmp_path / "labels.csv", class_names=CLASSES, image_shape=(3, 8, 8))
    assert torch.equal(result.images[0], torch.from_numpy(arrays["a.png"].transpose(2, 0, 1) / 255.0).float())


def test_unknown_label_names_the_row(tmp_path):
    _make(tmp_path, [("a.png", "dog"), ("b.png", "wolf")])
    with pytest.raises(ValueError, match=r"row 2.*'wolf'.*unknown"):
        load_labelled_folder(tmp_path, tmp_path / "labels.csv", class_names=CLASSES, image_shape=(1, 8, 8))


def test_index_out_of_range_is_unknown(tmp_path):
    _make(tmp_path, [("a.png", "3")])
    with pytest.raises(ValueError, match="unknown"):
        load_labelled_folder(tmp_path, tmp_path / "labels.csv", class_names=CLASSES, image_shape=(1, 8, 8))


def test_wrong_size_names_the_file(tmp_path):
    _make(tmp_path, [("a.png", "dog")], size=6)
    with pytest.raises(ValueError, match=r"a\.png.*\(1, 6, 6\).*\(1, 8, 8\)"):
        load_labelled_folder(tmp_path, tmp_path / "labels.csv", class_names=CLASSES, image_shape=(1, 8, 8))


def test_wrong_channel_count_names_the_file(tmp_path):
    _make(tmp_path, [("a.png", "dog")], mode="RGB")
    with pytest.raises(ValueError, match=r"a\.png.*\(3, 8, 8\)"):
        load_labelled_folder(tmp_path, tmp_path / "labels.csv", class_names=CLASSES, image_shape=(1, 8, 8))


def test_missing_file_and_missing_column_and_duplicates(tmp_path):
    _make(tmp_path, [("a.png", "dog")])
    (tmp_path / "labels.csv").write_text("filename,label\na.png,dog\nmissing.png,cat\n")
    with pytest.raises(FileNotFoundError, match="missing.png"):
        load_labelled_folder(tmp_path, tmp_path / "labels.csv", class_names=CLASSES, image_shape=(1, 8, 8))
    (tmp_path / "labels.csv").write_text("file,class\na.png,dog\n")
    with pytest.raises(ValueError, match="missing column"):
        load_labelled_folder(tmp_path, tmp_path / "labels.csv", class_names=CLASSES, image_shape=(1, 8, 8))
    (tmp_path / "labels.csv").write_text("filename,label\na.png,dog\na.png,cat\n")
    with pytest.raises(ValueError, match="listed twice"):
        load_labelled_folder(tmp_path, tmp_path / "labels.csv", class_names=CLASSES, image_shape=(1, 8, 8))
    with pytest.raises(FileNotFoundError, match="labels CSV"):
        load_labelled_folder(tmp_path, tmp_path / "nope.csv", class_names=CLASSES, image_shape=(1, 8, 8))
