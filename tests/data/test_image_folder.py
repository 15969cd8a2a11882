import hashlib
import warnings

import numpy as np
import pytest
from PIL import Image

from medsyn.data.image_folder import load_image_folder, read_image_folder
from medsyn.data.sources import load_source, prepare_splits
from medsyn.data.split import load_split_manifest


def _checksums(root):
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def _make_folder(root, classes=("cat_a", "cat_b"), per_class=5, side=16, mode="RGB"):
    rng = np.random.default_rng(0)
    pixels = {}
    for name in classes:
        (root / name).mkdir(parents=True)
        for index in range(per_class):
            shape = (side, side, 3) if mode == "RGB" else (side, side)
            array = rng.integers(0, 256, size=shape, dtype=np.uint8)
            path = root / name / f"img{index}.png"
            Image.fromarray(array, mode=mode).save(path)
            pixels[path] = array
    return pixels


def test_reads_classes_values_and_leaves_files_alone(tmp_path):
    pixels = _make_folder(tmp_path / "kvasir")
    before = _checksums(tmp_path)
    data = read_image_folder(tmp_path / "kvasir")
    image_set = data.sets
    assert image_set.class_names == ("cat_a", "cat_b")
    assert image_set.images.shape == (10, 3, 16, 16)
    assert image_set.labels.tolist() == [0] * 5 + [1] * 5
    first = pixels[tmp_path / "kvasir" / "cat_a" / "img0.png"]
    np.testing.assert_allclose(image_set.images[0].permute(1, 2, 0).numpy(), first / 255.0, atol=1e-7)
    assert data.item_ids[5] == "cat_b/img0.png"
    assert _checksums(tmp_path) == before


def test_grey_and_resize(tmp_path):
    pixels = _make_folder(tmp_path / "g", mode="L", side=32)
    image_set = load_source("image_folder", path=str(tmp_path / "g"), channels=1, size=16)
    assert image_set.images.shape == (10, 1, 16, 16)
    first = pixels[tmp_path / "g" / "cat_a" / "img0.png"] / 255.0
    # antialiased bilinear 2x shrink == mean of 2x2 blocks convolved by the triangle; check the mean only
    assert abs(float(image_set.images[0].mean()) - first.mean()) < 2e-3


def test_grey_png_read_as_rgb_repeats_channel(tmp_path):
    _make_folder(tmp_path / "g", mode="L")
    image_set = load_image_folder(tmp_path / "g", channels=3)
    assert image_set.images.shape[1] == 3
    np.testing.assert_array_equal(image_set.images[:, 0].numpy(), image_set.images[:, 2].numpy())


def test_sixteen_bit_png_keeps_precision(tmp_path):
    (tmp_path / "d" / "x").mkdir(parents=True)
    array = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000).astype(np.uint16)
    Image.fromarray(array).save(tmp_path / "d" / "x" / "a.png")
    image_set = load_image_folder(tmp_path / "d", channels=1)
    np.testing.assert_allclose(image_set.images[0, 0].numpy(), array / 65535.0, atol=1e-6)


def test_class_prefix_and_classes_filter(tmp_path):
    _make_folder(tmp_path / "pv", classes=("Apple___scab", "Corn___rust", "Corn___healthy"), per_class=2)
    corn = load_image_folder(tmp_path / "pv", class_prefix="Corn")
    assert corn.class_names == ("Corn___healthy", "Corn___rust")
    one = load_image_folder(tmp_path / "pv", classes=["Apple___scab"])
    assert one.class_names == ("Apple___scab",)
    with pytest.raises(FileNotFoundError, match="Pear"):
        load_image_folder(tmp_path / "pv", classes=["Pear"])
    with pytest.raises(ValueError, match="prefix 'Tomato'"):
        load_image_folder(tmp_path / "pv", class_prefix="Tomato")


def test_missing_root(tmp_path):
    with pytest.raises(FileNotFoundError, match="not_here"):
        load_image_folder(tmp_path / "not_here")


def test_empty_class_folder_named(tmp_path):
    _make_folder(tmp_path / "d")
    (tmp_path / "d" / "empty_class").mkdir()
    with pytest.raises(ValueError, match="empty_class has no image files"):
        load_image_folder(tmp_path / "d")


def test_unreadable_image_named_or_skipped(tmp_path):
    _make_folder(tmp_path / "d")
    bad = tmp_path / "d" / "cat_b" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    before = _checksums(tmp_path)
    with pytest.raises(ValueError, match="broken.png"):
        load_image_folder(tmp_path / "d")
    with pytest.warns(UserWarning, match=r"skipped 1 file\(s\)[\s\S]*broken.png"):
        splits = prepare_splits("image_folder", {"path": str(tmp_path / "d"), "on_error": "skip"}, seed=0,
                                manifest_path=tmp_path / "out" / "m.json")
    assert sum(len(part) for part in splits.values()) == 10
    manifest = load_split_manifest(tmp_path / "out" / "m.json")
    assert manifest.num_skipped == 1 and manifest.skipped[0]["file"] == str(bad)
    assert _checksums(tmp_path / "d") == {p: h for p, h in before.items() if "out" not in p.parts}


def test_mixed_sizes_need_size(tmp_path):
    _make_folder(tmp_path / "d", side=16)
    Image.fromarray(np.zeros((20, 16, 3), dtype=np.uint8)).save(tmp_path / "d" / "cat_b" / "tall.png")
    with pytest.raises(ValueError, match=r"tall.png: image shape \(3, 20, 16\)"):
        load_image_folder(tmp_path / "d")
    assert load_image_folder(tmp_path / "d", size=8).images.shape == (11, 3, 8, 8)


def test_non_images_ignored_and_bad_channels(tmp_path):
    _make_folder(tmp_path / "d")
    (tmp_path / "d" / "cat_a" / "README.txt").write_text("notes")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(load_image_folder(tmp_path / "d")) == 10
    with pytest.raises(ValueError, match="channels"):
        load_image_folder(tmp_path / "d", channels=2)


def test_registered_paper_layouts(tmp_path):
    classes = ("Apple___scab", "Corn_(maize)___Common_rust_", "Corn_(maize)___healthy")
    _make_folder(tmp_path / "pv", classes=classes, per_class=2)
    corn = load_source("corn", path=str(tmp_path / "pv"), size=8)
    assert corn.class_names == ("Corn_(maize)___Common_rust_", "Corn_(maize)___healthy")
    assert corn.images.shape == (4, 3, 8, 8)
    plantvillage = load_source("plantvillage", path=str(tmp_path / "pv"))
    assert plantvillage.images.shape == (6, 3, 256, 256)  # paper 000 §3 resolution by default
    assert load_source("kvasir", path=str(tmp_path / "pv"), size=8).num_classes == 3
