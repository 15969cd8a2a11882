"""The MNIST / Fashion-MNIST reader: IDX files written here (gzip and plain), a Keras-style .npz, bad headers
refused with the file name, and the Debian package's Fashion-MNIST when this machine has it."""

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from medsyn.config.data import DataSection
from medsyn.config.strict import ConfigError
from medsyn.data.mnist_idx import FASHION_MNIST_CLASSES, read_idx, read_mnist
from medsyn.data.sources import draw_splits, read_source

FASHION = Path("/usr/share/datasets/fashion-mnist")  # Debian package dataset-fashion-mnist


def _idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", n) for n in array.shape)
    return header + array.astype(np.uint8).tobytes()


def _write(path: Path, array: np.ndarray, *, gz: bool) -> Path:
    data = _idx_bytes(array)
    if gz:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def _parts(rng, n_train=30, n_test=20, size=6):
    train_images = rng.integers(0, 256, size=(n_train, size, size), dtype=np.uint8)
    test_images = rng.integers(0, 256, size=(n_test, size, size), dtype=np.uint8)
    return train_images, np.arange(n_train) % 3, test_images, np.arange(n_test) % 3


@pytest.fixture
def idx_folder(tmp_path):
    rng = np.random.default_rng(0)
    train_images, train_labels, test_images, test_labels = _parts(rng)
    # the train files gzipped, the test files plain: both forms in one folder
    _write(tmp_path / "train-images-idx3-ubyte", train_images, gz=True)
    _write(tmp_path / "train-labels-idx1-ubyte", train_labels, gz=True)
    _write(tmp_path / "t10k-images-idx3-ubyte", test_images, gz=False)
    _write(tmp_path / "t10k-labels-idx1-ubyte", test_labels, gz=False)
    return tmp_path, (train_images, train_labels, test_images, test_labels)


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_round_trips_gzip_and_plain(tmp_path, gz):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = _write(tmp_path / "x-idx3-ubyte", array, gz=gz)
    read = read_idx(path)
    assert read.dtype == np.uint8 and read.shape == (2, 3, 4) and np.array_equal(read, array)


def test_read_idx_big_endian_int32(tmp_path):
    values = np.array([[1, -2], [70000, 3]], dtype=">i4")
    (tmp_path / "i.idx").write_bytes(bytes([0, 0, 0x0C, 2]) + struct.pack(">II", 2, 2) + values.tobytes())
    read = read_idx(tmp_path / "i.idx")
    assert read.dtype.isnative and read.tolist() == [[1, -2], [70000, 3]]


@pytest.mark.parametrize("data, message", [
    (b"\x01\x00\x08\x01" + struct.pack(">I", 2) + b"\x00\x00", "not an IDX file"),
    (bytes([0, 0, 0x07, 1]) + struct.pack(">I", 2) + b"\x00\x00", "unknown IDX type code 0x07"),
    (bytes([0, 0, 0x08, 3]) + struct.pack(">I", 2), "declares 3 dimensions but the file has 8 bytes"),
    (bytes([0, 0, 0x08, 1]) + struct.pack(">I", 5) + b"\x00\x00", r"shape \(5,\) \(5 bytes of data\), the file holds 2"),
    (b"", "an empty file"),
])
@pytest.mark.parametrize("gz", [False, True])
def test_a_corrupt_header_is_refused_with_the_file_name(tmp_path, data, message, gz):
    path = tmp_path / ("bad-idx.gz" if gz else "bad-idx")
    path.write_bytes(gzip.compress(data) if gz else data)
    with pytest.raises(ValueError, match=rf"{path.name}: .*{message}"):
        read_idx(path)


def test_a_truncated_gzip_is_refused_with_the_file_name(tmp_path):
    path = tmp_path / "cut.gz"
    path.write_bytes(gzip.compress(_idx_bytes(np.zeros((4, 4), np.uint8)))[:-6])
    with pytest.raises(ValueError, match=r"cut\.gz: not a readable gzip file"):
        read_idx(path)


def test_folder_pools_the_chosen_parts_in_unit_range(idx_folder):
    folder, (train_images, train_labels, test_images, test_labels) = idx_folder
    pooled = read_mnist(folder).sets
    assert pooled.images.shape == (50, 1, 6, 6) and pooled.images.dtype == torch.float32
    expected = np.concatenate([train_images, test_images]).astype(np.float32) / 255
    assert torch.allclose(pooled.images[:, 0], torch.from_numpy(expected))
    assert pooled.labels.tolist() == np.concatenate([train_labels, test_labels]).tolist()
    assert pooled.class_names == ("0", "1", "2")
    test_only = read_mnist(folder, parts="test", size=12).sets
    assert test_only.images.shape == (20, 1, 12, 12) and test_only.labels.tolist() == test_labels.tolist()
    assert len(read_mnist(folder, parts="train").sets) == 30


def test_npz_matches_the_idx_folder(idx_folder, tmp_path):
    folder, (train_images, train_labels, test_images, test_labels) = idx_folder
    npz = tmp_path / "mnist.npz"
    np.savez(npz, x_train=train_images, y_train=train_labels.astype(np.uint8), x_test=test_images,
             y_test=test_labels.astype(np.uint8))
    from_npz, from_idx = read_mnist(npz).sets, read_mnist(folder).sets
    assert torch.equal(from_npz.images, from_idx.images) and torch.equal(from_npz.labels, from_idx.labels)


def test_bad_inputs_name_the_file(idx_folder, tmp_path):
    folder, (train_images, train_labels, _test_images, _test_labels) = idx_folder
    (folder / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match=r"no t10k-labels-idx1-ubyte or t10k-labels-idx1-ubyte\.gz"):
        read_mnist(folder)
    assert len(read_mnist(folder, parts="train").sets) == 30  # the train part alone still reads
    _write(folder / "t10k-labels-idx1-ubyte", np.zeros(7, np.uint8), gz=False)
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte: 7 labels for 20 images"):
        read_mnist(folder)
    with pytest.raises(ValueError, match="parts must be 'all', 'train' or 'test', got 'val'"):
        read_mnist(folder, parts="val")
    npz = tmp_path / "half.npz"
    np.savez(npz, x_train=train_images, y_train=train_labels)
    with pytest.raises(ValueError, match=r"half\.npz: missing key 'x_test'"):
        read_mnist(npz)
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match=r"notes\.txt: neither a folder of IDX files nor an \.npz"):
        read_mnist(tmp_path / "notes.txt")
    with pytest.raises(FileNotFoundError, match="MNIST data not found"):
        read_mnist(tmp_path / "absent")
    with pytest.raises(ValueError, match="class_names has 2 names but labels go up to 2"):
        read_mnist(folder, parts="train", class_names=["a", "b"])


def test_registered_kinds_and_their_options(idx_folder):
    folder, _arrays = idx_folder
    assert read_source("fashion_mnist", path=folder).sets.class_names == FASHION_MNIST_CLASSES
    with pytest.raises(ConfigError, match=r"data\.options\.part: unknown key; did you mean 'parts'\?"):
        DataSection(kind="mnist", options={"path": str(folder), "part": "test"})
    splits, manifest = draw_splits("mnist", {"path": str(folder)}, seed=0, per_class=4)
    assert len(splits["train"]) == 12 and manifest is not None
    assert splits["train"].class_counts() == [4, 4, 4]


@pytest.mark.skipif(not (FASHION / "t10k-images-idx3-ubyte.gz").is_file(),
                    reason="Debian package dataset-fashion-mnist not installed")
def test_the_debian_fashion_mnist_test_part():
    test = read_source("fashion_mnist", path=FASHION, parts="test").sets
    assert test.images.shape == (10000, 1, 28, 28)
    assert test.labels.bincount().tolist() == [1000] * 10  # Xiao et al. 2017: 1000 test images per class
    assert 0.0 <= float(test.images.min()) and float(test.images.max()) == 1.0
    assert test.class_names[9] == "Ankle boot"
