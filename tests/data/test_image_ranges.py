"""Inputs at their true range: 16-bit and float TIFF / PNG decode to the values written, never to 8 bits."""

import hashlib
import struct
import zlib

import numpy as np
import pytest
import tifffile
from PIL import Image

from medsyn.data.image_folder import decode_image_bytes, read_image_folder
from medsyn.data.pixels import to_unit_range
from medsyn.data.sources import prepare_splits


def _checksums(root):
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def _float_image(seed, shape=(12, 10)):
    values = np.random.default_rng(seed).random(shape, dtype=np.float32)
    values[0, 0], values[0, 1] = 0.0, 1.0
    return values


def _png16_rgb(path, array):
    """A 16-bit RGB PNG written by hand (Pillow cannot write one): IHDR bit depth 16, colour type 2."""
    def chunk(kind, payload):
        crc = struct.pack(">I", zlib.crc32(kind + payload))
        return struct.pack(">I", len(payload)) + kind + payload + crc

    height, width, _ = array.shape
    rows = b"".join(b"\x00" + array[y].astype(">u2").tobytes() for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
                     + chunk(b"IEND", b""))


def test_float32_tiff_in_unit_range_is_read_as_written(tmp_path):
    root = tmp_path / "images"
    written = {}
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        for index in range(3):
            array = _float_image(10 * (name == "b") + index)
            tifffile.imwrite(root / name / f"{index}.tif", array)
            written[f"{name}/{index}.tif"] = array
    before = _checksums(root)
    with pytest.warns(UserWarning, match=r"6 float image\(s\) taken as already in \[0, 1\].*a/0\.tif with values "
                                         r"\[0, 1\]"):
        data = read_image_folder(root, channels=1)
    assert _checksums(root) == before
    for position, item in enumerate(data.item_ids):
        np.testing.assert_array_equal(data.sets.images[position, 0].numpy(), written[item])
    declared = read_image_folder(root, channels=1, value_range=[0, 1])  # declared: no warning, same values
    np.testing.assert_array_equal(declared.sets.images.numpy(), data.sets.images.numpy())
    assert float(data.sets.images.mean()) > 0.3  # not the all-black 8-bit image of before


def test_float_tiff_outside_declared_range_is_an_error_naming_the_file(tmp_path):
    root = tmp_path / "images" / "a"
    root.mkdir(parents=True)
    tifffile.imwrite(root / "ok.tif", _float_image(0))
    tifffile.imwrite(root / "hu.tif", (_float_image(1) * 1400 - 1000).astype(np.float32))  # CT in HU
    before = _checksums(root)
    with pytest.raises(ValueError, match=r"hu\.tif: float pixels span \[-1000, 400\], outside \[0, 1\]; "
                                         r"declare value_range"):
        read_image_folder(root.parent, channels=1)
    with pytest.raises(ValueError, match=r"hu\.tif: pixels span \[-1000, 400\], outside the declared value_range "
                                         r"\[-500, 500\]"):
        read_image_folder(root.parent, channels=1, value_range=[-500, 500])
    assert _checksums(root) == before
    (root / "ok.tif").unlink()
    ct = read_image_folder(root.parent, channels=1, value_range=[-1000, 400]).sets.images[0, 0].numpy()
    expected = ((tifffile.imread(root / "hu.tif").astype(np.float64) + 1000) / 1400).astype(np.float32)
    np.testing.assert_array_equal(ct, expected)
    nan = _float_image(2)
    nan[3, 3] = np.nan
    tifffile.imwrite(root / "nan.tif", nan)
    with pytest.raises(ValueError, match=r"nan\.tif: pixels contain NaN or inf"):
        read_image_folder(root.parent, channels=1, value_range=[-1000, 400])


def test_uint16_tiff_grey_and_rgb_keep_16_bits(tmp_path):
    root = tmp_path / "images" / "a"
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 65536, (9, 7), dtype=np.uint16)
    rgb = rng.integers(0, 65536, (9, 7, 3), dtype=np.uint16)
    planar = rng.integers(0, 65536, (9, 7, 3), dtype=np.uint16)
    tifffile.imwrite(root / "grey.tif", grey)
    tifffile.imwrite(root / "rgb.tif", rgb, photometric="rgb")
    tifffile.imwrite(root / "planar.tif", np.moveaxis(planar, -1, 0), photometric="rgb",
                     planarconfig="separate")
    before = _checksums(root)
    folder = read_image_folder(root.parent, channels=3).sets.images  # grey.tif, planar.tif, rgb.tif
    np.testing.assert_array_equal(folder[0].numpy(), np.repeat(grey[None].astype(np.float32) / 65535, 3, 0))
    np.testing.assert_array_equal(folder[2].numpy(), rgb.transpose(2, 0, 1).astype(np.float32) / 65535)
    assert _checksums(root) == before
    grey_read = decode_image_bytes((root / "grey.tif").read_bytes(), 1, where="grey.tif")
    np.testing.assert_array_equal(grey_read[0].numpy(), grey.astype(np.float32) / 65535)
    np.testing.assert_allclose(grey_read[0].numpy(), grey / 65535.0, rtol=0, atol=1e-7)  # float64 oracle
    for name, array in (("rgb.tif", rgb), ("planar.tif", planar)):
        read = decode_image_bytes((root / name).read_bytes(), 3, where=name)
        np.testing.assert_array_equal(read.numpy(), array.transpose(2, 0, 1).astype(np.float32) / 65535)
    # 12-bit data in 16-bit storage with a declared range
    twelve = rng.integers(0, 4096, (9, 7), dtype=np.uint16)
    tifffile.imwrite(root / "grey.tif", twelve)
    read = decode_image_bytes((root / "grey.tif").read_bytes(), 1, where="grey.tif", value_range=[0, 4095])
    np.testing.assert_array_equal(read[0].numpy(), (twelve / 4095.0).astype(np.float32))


def test_sixteen_bit_grey_png_exact_and_colour_png_refused(tmp_path):
    root = tmp_path / "images" / "a"
    root.mkdir(parents=True)
    values = (np.arange(120, dtype=np.uint16).reshape(12, 10) * 541 + 7)
    Image.fromarray(values).save(root / "grey16.png")
    before = _checksums(root)
    images = read_image_folder(root.parent, channels=1).sets.images
    np.testing.assert_array_equal(images[0, 0].numpy(), values.astype(np.float32) / 65535)
    assert len(np.unique(images.numpy())) == 120  # 8 bits would merge neighbouring values
    _png16_rgb(root / "rgb16.png", np.random.default_rng(0).integers(0, 65536, (4, 5, 3), dtype=np.uint16))
    with pytest.raises(ValueError, match=r"rgb16\.png: 16-bit RGB PNG; Pillow would keep only 8 of its"):
        read_image_folder(root.parent, channels=3)
    assert {k: v for k, v in _checksums(root).items() if k.name != "rgb16.png"} == before


def test_eight_bit_images_unchanged_and_signed_tiff_needs_a_range(tmp_path):
    root = tmp_path / "images" / "a"
    root.mkdir(parents=True)
    pixels = np.random.default_rng(0).integers(0, 256, (6, 5), dtype=np.uint8)
    tifffile.imwrite(root / "eight.tif", pixels)
    Image.fromarray(pixels).save(root / "eight.png")
    for name in ("eight.tif", "eight.png"):
        read = decode_image_bytes((root / name).read_bytes(), 1, where=name)
        np.testing.assert_array_equal(read[0].numpy(), pixels.astype(np.float32) / 255)
    signed = np.arange(-15, 15, dtype=np.int16).reshape(6, 5)
    tifffile.imwrite(root / "signed.tif", signed)
    with pytest.raises(ValueError, match=r"signed\.tif: int16 pixels \(values \[-15, 14\]\) have no standard"):
        decode_image_bytes((root / "signed.tif").read_bytes(), 1, where=str(root / "signed.tif"))
    data = (root / "signed.tif").read_bytes()
    read = decode_image_bytes(data, 1, where="signed.tif", value_range=[-15, 15])
    np.testing.assert_array_equal(read[0].numpy(), ((signed + 15) / 30.0).astype(np.float32))


def test_single_float_image_warns_naming_it():
    import io

    buffer = io.BytesIO()
    tifffile.imwrite(buffer, np.full((3, 3), 0.25, np.float32))
    with pytest.warns(UserWarning, match=r"1 float image\(s\) taken as already in \[0, 1\].*one\.tif with values "
                                         r"\[0\.25, 0\.25\]"):
        image = decode_image_bytes(buffer.getvalue(), 1, where="one.tif")
    assert float(image.min()) == float(image.max()) == 0.25


@pytest.mark.parametrize("value_range, match", [
    ("full", "value_range must be 'auto' or"),
    ([1, 0], "finite low < high"),
    ([0, float("inf")], "finite low < high"),
    ([0, 1, 2], "value_range must be 'auto' or"),
    ([True, 2], "finite low < high"),
])
def test_bad_value_range(value_range, match):
    with pytest.raises(ValueError, match=match):
        to_unit_range(np.zeros((2, 2), np.uint8), value_range, where="x")


def test_value_range_option_reaches_the_image_folder_source(tmp_path):
    root = tmp_path / "images"
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        for index in range(5):
            tifffile.imwrite(root / name / f"{index}.tif", _float_image(index + 5 * (name == "b")) * 2 - 1)
    options = {"path": str(root), "channels": 1, "value_range": [-1, 1]}
    splits = prepare_splits("image_folder", options, seed=0)
    everything = np.concatenate([splits[name].images.numpy() for name in ("train", "val", "test")])
    assert everything.min() == 0.0 and everything.max() == 1.0
    with pytest.raises(ValueError, match=r"0\.tif: float pixels span \[-1, 1\], outside \[0, 1\]"):
        prepare_splits("image_folder", {"path": str(root), "channels": 1}, seed=0)


@pytest.mark.parametrize("dtype", [np.uint16, np.float32])
def test_lzw_compressed_one_sample_tiff_keeps_its_values(tmp_path, dtype):
    # Pillow writes LZW; tifffile decodes LZW only with imagecodecs, so without it Pillow's exact values are used
    rng = np.random.default_rng(3)
    values = rng.integers(0, 65536, (9, 7)).astype(dtype) if dtype == np.uint16 else _float_image(3, (9, 7))
    Image.fromarray(values).save(tmp_path / "lzw.tif", compression="tiff_lzw")
    read = decode_image_bytes((tmp_path / "lzw.tif").read_bytes(), 1, where="lzw.tif",
                              value_range=[0, 65535] if dtype == np.uint16 else [0, 1])
    scale = 65535.0 if dtype == np.uint16 else 1.0
    np.testing.assert_array_equal(read[0].numpy(), (values.astype(np.float64) / scale).astype(np.float32))
