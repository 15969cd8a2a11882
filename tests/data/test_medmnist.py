import hashlib

import numpy as np
import pytest
import torch

from medsyn.data.medmnist import load_medmnist_npz
from medsyn.data.sources import load_source, prepare_splits
from medsyn.data.split import load_split_manifest


def _write_npz(path, *, rgb=False, sizes=(12, 4, 4), classes=3, side=28, drop=None, **overrides):
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in zip(("train", "val", "test"), sizes):
        shape = (n, side, side, 3) if rgb else (n, side, side)
        arrays[f"{split}_images"] = rng.integers(0, 256, size=shape, dtype=np.uint8)
        arrays[f"{split}_labels"] = (np.arange(n) % classes).reshape(n, 1).astype(np.uint8)
    arrays.update(overrides)
    if drop:
        del arrays[drop]
    np.savez(path, **arrays)
    return arrays


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_grey_npz_official_splits_values(tmp_path):
    path = tmp_path / "toy.npz"
    arrays = _write_npz(path)
    splits = load_source("medmnist", path=str(path))
    assert set(splits) == {"train", "val", "test"}
    train = splits["train"]
    assert train.images.shape == (12, 1, 28, 28)
    np.testing.assert_allclose(train.images[:, 0].numpy(), arrays["train_images"] / 255.0, atol=1e-7)
    np.testing.assert_array_equal(train.labels.numpy(), arrays["train_labels"][:, 0])
    assert train.class_names == ("0", "1", "2")


def test_rgb_npz_channels_and_resize(tmp_path):
    path = tmp_path / "rgb.npz"
    arrays = _write_npz(path, rgb=True)
    splits = load_medmnist_npz(path)
    assert splits["val"].images.shape == (4, 3, 28, 28)
    np.testing.assert_allclose(splits["val"].images.permute(0, 2, 3, 1).numpy(), arrays["val_images"] / 255.0,
                               atol=1e-7)
    grey = load_medmnist_npz(path, channels=1, size=14)["test"]
    assert grey.images.shape == (4, 1, 14, 14)
    luma = (arrays["test_images"] / 255.0) @ np.array([0.299, 0.587, 0.114])
    # antialiased 2x shrink of the luma: the mean is kept
    np.testing.assert_allclose(grey.images.mean(dim=(1, 2, 3)).numpy(), luma.mean(axis=(1, 2)), atol=2e-3)


def test_prepare_splits_keeps_official_splits(tmp_path):
    path = tmp_path / "toy.npz"
    arrays = _write_npz(path, sizes=(30, 6, 6))
    before = _sha(path)
    splits = prepare_splits("medmnist", {"path": str(path)}, seed=0, per_class=2,
                            manifest_path=tmp_path / "out" / "manifest.json")
    manifest = load_split_manifest(tmp_path / "out" / "manifest.json")
    assert manifest.strategy == "official"
    assert manifest.val == list(range(30, 36)) and manifest.test == list(range(36, 42))
    assert manifest.class_counts["train"] == [2, 2, 2]
    assert all(index < 30 for index in manifest.train)
    expected = torch.from_numpy(arrays["test_images"] / 255.0).float().unsqueeze(1)
    torch.testing.assert_close(splits["test"].images, expected)
    assert _sha(path) == before


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.npz"):
        load_source("medmnist", path=str(tmp_path / "absent.npz"))


def test_missing_key_names_file_and_key(tmp_path):
    path = tmp_path / "nokey.npz"
    _write_npz(path, drop="val_labels")
    with pytest.raises(ValueError, match=r"nokey.npz: missing key 'val_labels'"):
        load_medmnist_npz(path)


def test_label_count_mismatch(tmp_path):
    path = tmp_path / "mismatch.npz"
    _write_npz(path, train_labels=np.zeros((11, 1), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"mismatch.npz: key 'train_labels' has 11 labels but"):
        load_medmnist_npz(path)


def test_multilabel_refused(tmp_path):
    path = tmp_path / "chest.npz"
    _write_npz(path, test_labels=np.zeros((4, 14), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"chest.npz: key 'test_labels'.*multi-label"):
        load_medmnist_npz(path)


def test_float_images_refused(tmp_path):
    path = tmp_path / "float.npz"
    _write_npz(path, train_images=np.zeros((12, 28, 28), dtype=np.float32))
    with pytest.raises(ValueError, match=r"float.npz: key 'train_images' must be uint8"):
        load_medmnist_npz(path)


def test_not_an_npz(tmp_path):
    path = tmp_path / "junk.npz"
    path.write_bytes(b"this is not a zip archive")
    with pytest.raises(ValueError, match="junk.npz"):
        load_medmnist_npz(path)
