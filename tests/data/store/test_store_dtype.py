"""The storage dtype rule (medsyn.data.store.storage_dtype): under "auto" the narrowest exact dtype
(uint8, uint16, float32), an error naming the item when uint8 is asked for data off the 1/255 grid, float32 exact; and the
check of every decoded image."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medsyn.data.store.storage_dtype import decode_values, encode_values, widen_uint8_to_uint16


def test_every_8_bit_value_reads_back_exactly_as_uint8_and_widened_to_uint16():
    values = np.arange(256, dtype=np.uint8).astype(np.float32)[None] / 255  # as the source decoders divide
    stored, errors = encode_values(values, "uint8")
    assert stored.dtype == np.uint8 and errors.tolist() == [0.0]
    assert np.array_equal(decode_values(stored), values)
    assert np.array_equal(decode_values(widen_uint8_to_uint16(stored)), values)


def test_every_16_bit_value_reads_back_exactly_as_uint16():
    values = np.arange(65536, dtype=np.uint16).astype(np.float32)[None] / 65535
    stored, errors = encode_values(values, "uint16")
    assert errors.tolist() == [0.0] and np.array_equal(decode_values(stored), values)
    assert encode_values(values, "uint8")[1][0] > 0  # not on the 1/255 grid


def test_8_bit_data_is_stored_as_uint8_under_auto(source):
    store = source.build().store
    assert store.storage_dtype == "uint8" and store.exact and store.max_abs_error == 0.0
    assert store.bytes_per_image == 3 * 16 * 16
    assert torch.equal(store.read(range(10)), torch.from_numpy(np.stack([source.decoded(i) for i in range(10)])))


def _resampled(source):
    """What a 2x linear resampling makes: means of two 8-bit values, k/510, mostly off the 1/255 grid."""
    source.transform = lambda values: (values + np.roll(values, 1, axis=-1)) / np.float32(2)


def test_resampled_data_is_stored_exactly_as_float32_under_auto(source):
    _resampled(source)
    store = source.build().store
    decoded = np.stack([source.decoded(i) for i in range(10)])
    assert store.storage_dtype == "float32" and store.exact and store.max_abs_error == 0.0
    assert np.array_equal(store.read(range(10)).numpy(), decoded)
    assert store.bytes_per_image == 4 * 3 * 16 * 16


def test_resampled_data_is_rounded_to_1_65535_as_uint16_on_request(source):
    _resampled(source)
    store = source.build(dtype="uint16").store
    decoded = np.stack([source.decoded(i) for i in range(10)])
    assert store.storage_dtype == "uint16" and not store.exact
    assert 0 < store.max_abs_error <= 0.5 / 65535 + 1e-7
    read = store.read(range(10)).numpy()
    assert np.abs(read - decoded).max() == pytest.approx(store.max_abs_error)
    assert np.array_equal(read, np.rint(decoded * 65535).astype(np.float32) / 65535)
    assert store.bytes_per_image == 2 * 3 * 16 * 16


def test_auto_widens_what_it_wrote_as_uint8_exactly_when_a_later_chunk_is_off_the_grid(source):
    def decode(index):  # chunks of 4: items 0-7 are 8-bit, 8 and 9 are not
        values = source.decode(index)
        return values if index < 8 else values * np.float32(0.999)

    store = source.build(decode=decode).store
    assert store.storage_dtype == "float32" and store.exact
    assert torch.equal(store.read(range(8)), torch.from_numpy(np.stack([source.decoded(i) for i in range(8)])))
    assert source.decode_calls == 10  # nothing decoded twice
    assert torch.equal(store.read([8, 9]), torch.from_numpy(np.stack([decode(8), decode(9)])))


def test_auto_widens_8_bit_rows_to_uint16_for_a_later_16_bit_chunk(source):
    rng = np.random.default_rng(2)
    deep = rng.integers(0, 65536, size=(10, 3, 16, 16), dtype=np.uint16).astype(np.float32) / 65535

    def decode(index):  # chunks of 4: items 0-7 are 8-bit, 8 and 9 16-bit
        return source.decode(index) if index < 8 else deep[index]

    store = source.build(decode=decode).store
    assert store.storage_dtype == "uint16" and store.exact
    assert torch.equal(store.read(range(8)), torch.from_numpy(np.stack([source.decoded(i) for i in range(8)])))
    assert torch.equal(store.read([8, 9]), torch.from_numpy(deep[8:10]))


def test_uint8_asked_for_data_off_the_grid_is_an_error_naming_the_item(source):
    def decode(index):
        values = source.decode(index)
        return values if index != 6 else values * np.float32(0.999)

    with pytest.raises(ValueError, match=r"item 6 \(.*benign/img_006.npy\) is not on the 1/255 grid") as error:
        source.build(decode=decode, dtype="uint8")
    assert str(source.root) in str(error.value) and "dtype='auto'" in str(error.value)
    assert not any(name.startswith("fake_folder-") for name in (p.name for p in source.cache.iterdir()))
    assert source.build(dtype="uint8").store.storage_dtype == "uint8"  # 8-bit data: fine


def test_uint16_and_float32_on_request(source):
    _resampled(source)
    decoded = torch.from_numpy(np.stack([source.decoded(i) for i in range(10)]))
    as_float = source.build(dtype="float32").store
    assert as_float.storage_dtype == "float32" and as_float.exact and torch.equal(as_float.read(range(10)), decoded)
    as_uint16 = source.build(dtype="uint16").store
    assert as_uint16.storage_dtype == "uint16" and as_uint16.path != as_float.path


def test_16_bit_data_is_exact_as_uint16(source):
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 65536, size=(10, 3, 16, 16), dtype=np.uint16)
    store = source.build(decode=lambda i: pixels[i].astype(np.float32) / 65535).store
    assert store.storage_dtype == "uint16" and store.exact
    assert torch.equal(store.read(range(10)), torch.from_numpy(pixels.astype(np.float32) / 65535))


@pytest.mark.parametrize(
    "bad, message",
    [
        (lambda v: v.astype(np.float64), "decode returned float64 values, expected float32"),
        (lambda v: v[:, :8], r"decoded image has shape \(3, 8, 16\), the store's image_shape is \(3, 16, 16\)"),
        (lambda v: np.where(v > 0.5, np.float32("nan"), v), "decoded image contains NaN or inf"),
        (lambda v: v * np.float32(2), r"decoded image has values in \[0(\.\d+)?, 2(\.\d+)?\], expected \[0, 1\]"),
        (lambda v: v.tolist(), "decode returned list, expected a float32 array"),
    ],
)
def test_each_decoded_image_is_checked_and_the_error_names_its_file(source, bad, message):
    with pytest.raises((TypeError, ValueError), match=r"item 3 \(.*malignant/img_003.npy\): " + message):
        source.build(decode=lambda i: bad(source.decoded(i)) if i == 3 else source.decoded(i))


def test_decode_may_return_a_tensor(source):
    store = source.build(decode=lambda i: torch.from_numpy(source.decoded(i))).store
    assert torch.equal(store.read([2]), torch.from_numpy(source.decoded(2))[None])


def test_an_unknown_dtype_is_refused(source):
    with pytest.raises(ValueError, match=r"dtype must be one of \['auto', 'uint8', 'uint16', 'float32'\]"):
        source.build(dtype="float16")
