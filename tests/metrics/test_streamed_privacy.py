"""Privacy metrics on StoredImages (pixels in an image store on disk): the streamed scans give exactly the
numbers of the in-memory scans of the same images as tensors (every value, index and statistic, ties
included), and never read more than one block of a stored set at a time."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch

from medsyn.data.store import build_store
from medsyn.data.stored_images import StoredImages
from medsyn.metrics.features.registry import (
    FeatureExtractorSpec,
    register_feature_extractor,
    unregister_feature_extractor,
)
from medsyn.metrics.privacy import distance_to_closest_record, privacy_gallery, ssim_max_privacy

SHAPE = (3, 16, 16)
BLOCK_SIZES = (7, 16, 100)  # none divides 40, 70 or 30; 100 holds every set in one block


def stored(images: torch.Tensor, folder: Path) -> StoredImages:
    """``images`` (float32 [N, C, H, W] in [0, 1]) as StoredImages of a float32 store built in ``folder``."""
    source = folder / "source"
    source.mkdir(parents=True)
    (source / "images.bin").write_bytes(b"test images")  # the one file every item comes from
    build = build_store(
        kind="test_images", root=source, files=[source / "images.bin"], item_files=[0] * len(images),
        labels=[0] * len(images), class_names=("all",), image_shape=tuple(images.shape[1:]),
        decode=lambda i: images[i].numpy(), options={}, cache_dir=folder / "cache", dtype="float32",
    )
    return StoredImages.of_store(build.store)


@pytest.fixture(scope="module")
def sets() -> dict[str, torch.Tensor]:
    """40 synthetic, 70 training, 30 holdout images with planted ties: training images 5 = 50, 20 = 22
    and 12 = 33 = 69 (across and within blocks), copied or nearly copied into the synthetic and holdout
    sets, so their best match is tied between training indices."""
    rng = np.random.default_rng(0)
    train = rng.random((70, *SHAPE), dtype=np.float32)
    train[50], train[22] = train[5], train[20]
    train[33] = train[69] = train[12]
    synthetic = rng.random((40, *SHAPE), dtype=np.float32)
    synthetic[3], synthetic[17], synthetic[39] = train[50], train[22], train[69]
    synthetic[25] = np.clip(train[50] + rng.normal(0, 0.01, SHAPE), 0, 1)  # a near copy: a non-zero tie
    synthetic[8] = synthetic[3]
    holdout = rng.random((30, *SHAPE), dtype=np.float32)
    holdout[0], holdout[29] = train[33], np.clip(train[22] + rng.normal(0, 0.01, SHAPE), 0, 1)
    return {"synthetic": torch.from_numpy(synthetic), "train": torch.from_numpy(train),
            "holdout": torch.from_numpy(holdout)}


@pytest.fixture(scope="module")
def stored_sets(sets, tmp_path_factory) -> dict[str, StoredImages]:
    return {name: stored(images, tmp_path_factory.mktemp(name)) for name, images in sets.items()}


def mixes(names: tuple[str, ...]) -> list[tuple[bool, ...]]:
    """Which sets are stored: every combination with at least one stored set."""
    return [flags for flags in itertools.product((True, False), repeat=len(names)) if any(flags)]


def chosen(sets, stored_sets, names, flags):
    return [stored_sets[name] if is_stored else sets[name] for name, is_stored in zip(names, flags)]


def test_the_stores_hold_the_images(sets, stored_sets):
    for name, images in sets.items():
        assert torch.equal(stored_sets[name][:], images)


BACKENDS = ["cpp", "torch", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA GPU (torch.cuda.is_available() is False)"))]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("block_images", BLOCK_SIZES)
def test_ssim_max_privacy_streamed_equals_in_memory(sets, stored_sets, backend, block_images):
    options = {"q": 10, "repeats": 4, "seed": 3, "backend": backend}
    expected = ssim_max_privacy(sets["synthetic"], sets["train"], **options)
    assert [expected["per_image_indices"][i] for i in (3, 8, 17, 25, 39)] == [5, 5, 20, 5, 12]  # smallest tied
    names = ("synthetic", "train")
    for flags in mixes(names):
        result = ssim_max_privacy(*chosen(sets, stored_sets, names, flags), block_images=block_images, **options)
        assert result == expected, flags  # every value, index, drawn subset and statistic


def test_ssim_max_privacy_streamed_gaussian_window(sets, stored_sets):
    options = {"q": 6, "repeats": 2, "window": "gaussian"}
    expected = ssim_max_privacy(sets["synthetic"], sets["train"], **options)
    assert ssim_max_privacy(stored_sets["synthetic"], stored_sets["train"], block_images=16, **options) == expected


@pytest.mark.parametrize("block_images", BLOCK_SIZES)
def test_dcr_streamed_equals_in_memory(sets, stored_sets, block_images):
    expected = distance_to_closest_record(sets["synthetic"], sets["train"], sets["holdout"])
    nearest = expected["synthetic_nearest_train_index"]
    assert [nearest[i] for i in (3, 8, 17, 25, 39)] == [5, 5, 20, 5, 12]  # smallest of the tied indices
    assert expected["synthetic_copies"] == 4 and expected["holdout_in_train"] == 1
    names = ("synthetic", "train", "holdout")
    for flags in mixes(names):
        result = distance_to_closest_record(*chosen(sets, stored_sets, names, flags), block_images=block_images)
        assert result == expected, flags  # every distance, index, ECDF point, KS, area and count


class RowMeans(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(1, 3))  # [N, H]: per-row means


def test_dcr_in_an_extractor_space_of_stored_images_equals_tensors(sets, stored_sets):
    spec = FeatureExtractorSpec("streamed_row_means", RowMeans, None, (0.0,) * 3, (1.0,) * 3, SHAPE[1], SHAPE[0])
    register_feature_extractor(spec, overwrite=True)
    try:
        options = {"space": "streamed_row_means", "batch_size": 16}
        expected = distance_to_closest_record(sets["synthetic"], sets["train"], sets["holdout"], **options)
        result = distance_to_closest_record(stored_sets["synthetic"], stored_sets["train"], sets["holdout"], **options)
        assert result == expected
    finally:
        unregister_feature_extractor("streamed_row_means")


def test_gallery_of_stored_images_equals_gallery_of_tensors(sets, stored_sets):
    ssim = ssim_max_privacy(sets["synthetic"], sets["train"], q=5, repeats=2)
    expected = privacy_gallery(sets["synthetic"], sets["train"], ssim, top=6)
    result = privacy_gallery(stored_sets["synthetic"], stored_sets["train"], ssim, top=6)
    assert result.keys() == expected.keys()
    for key, value in expected.items():
        assert np.array_equal(result[key], value), key
    assert result["real_indices"][:4] == [5, 5, 20, 12]


def test_a_bad_block_size_is_a_value_error(sets, stored_sets):
    for block_images in (0, -3, True, 2.5):
        with pytest.raises(ValueError, match="block_images"):
            ssim_max_privacy(stored_sets["synthetic"], sets["train"], block_images=block_images)
        with pytest.raises(ValueError, match="block_images"):
            distance_to_closest_record(stored_sets["synthetic"], sets["train"], sets["holdout"],
                                       block_images=block_images)


def test_streamed_scans_read_one_block_at_a_time(tmp_path, monkeypatch):
    """A larger stored set is never materialised: every read asks for at most one block of images."""
    rng = np.random.default_rng(1)
    sizes = {"synthetic": 90, "train": 260, "holdout": 45}
    images = {name: stored(torch.from_numpy(rng.random((n, 1, 16, 16), dtype=np.float32)), tmp_path / name)
              for name, n in sizes.items()}
    reads: list[int] = []
    original_read = StoredImages.read

    def recording_read(self, positions):
        reads.append(len(positions))
        return original_read(self, positions)

    monkeypatch.setattr(StoredImages, "read", recording_read)
    block = 32
    ssim = ssim_max_privacy(images["synthetic"], images["train"], q=10, repeats=2, block_images=block)
    ssim_reads, reads[:] = list(reads), []
    distance_to_closest_record(images["synthetic"], images["train"], images["holdout"], block_images=block)
    dcr_reads, reads[:] = list(reads), []
    privacy_gallery(images["synthetic"], images["train"], ssim, top=8)
    gallery_reads = list(reads)

    synthetic_blocks = -(-sizes["synthetic"] // block)
    assert max(ssim_reads) <= block
    # the synthetic set once, the training set once per synthetic block
    assert sum(ssim_reads) == sizes["synthetic"] + synthetic_blocks * sizes["train"]
    assert max(dcr_reads) <= block
    query_blocks = synthetic_blocks + -(-sizes["holdout"] // block)
    assert sum(dcr_reads) == sizes["synthetic"] + sizes["holdout"] + query_blocks * sizes["train"]
    assert gallery_reads == [8, 8]  # the shown pairs only
