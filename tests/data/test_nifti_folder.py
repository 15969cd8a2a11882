import hashlib
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from medsyn.data.nifti_folder import nifti_slices, read_nifti_folder
from medsyn.data.sources import load_source, prepare_splits
from medsyn.data.split import load_split_manifest

NIBABEL_DATA = Path(nib.__file__).parent / "tests" / "data"


def _bundled(name):
    path = NIBABEL_DATA / name
    if not path.is_file():
        pytest.skip(f"{name} is not bundled with this nibabel")
    return path


def _checksums(root):
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def nifti_folder(tmp_path):
    root = tmp_path / "nifti"
    root.mkdir()
    shutil.copy(_bundled("anatomical.nii"), root / "anat.nii")  # (33, 41, 25)
    shutil.copy(_bundled("reoriented_anat_moved.nii"), root / "moved.nii")  # (21, 26, 22)
    shutil.copy(_bundled("example_nifti2.nii.gz"), root / "nifti2.nii.gz")  # NIfTI-2, (32, 20, 12)
    (tmp_path / "labels.csv").write_text("path,label\nanat.nii,brain\nmoved.nii,brain\nnifti2.nii.gz,other\n")
    return root, tmp_path / "labels.csv"


def test_percentile_scaling_matches_numpy_oracle():
    volume = np.asarray(nib.load(_bundled("anatomical.nii")).get_fdata(), dtype=np.float64)
    slices, indices = nifti_slices(volume, where="anat", axis=2, slices=[3, 10], percentiles=(1, 99))
    assert indices == [3, 10]
    low, high = np.percentile(volume, [1, 99])
    expected = np.clip((volume[:, :, 10] - low) / (high - low), 0, 1).T
    assert slices.shape == (2, 1, 41, 33)
    np.testing.assert_allclose(slices[1, 0], expected, atol=1e-6)


def test_window_and_axes():
    volume = np.arange(2 * 3 * 4, dtype=np.float64).reshape(2, 3, 4)
    first_axis, _ = nifti_slices(volume, where="v", axis=0, window=(0, 23))
    assert first_axis.shape == (2, 1, 4, 3)
    np.testing.assert_allclose(first_axis[1, 0], volume[1].T / 23, atol=1e-7)
    middle, indices = nifti_slices(volume, where="v", axis=1, slices="middle", window=(0, 23))
    assert indices == [1]
    np.testing.assert_allclose(middle[0, 0], volume[:, 1, :].T / 23, atol=1e-7)


def test_folder_with_labels_csv(nifti_folder):
    root, labels_csv = nifti_folder
    before = _checksums(root.parent)
    data = read_nifti_folder(root, labels_csv=labels_csv, slices="middle", size=24)
    assert data.sets.images.shape == (3, 1, 24, 24)
    assert data.sets.class_names == ("brain", "other") and data.sets.labels.tolist() == [0, 0, 1]
    assert data.item_ids == ["anat.nii#slice12", "moved.nii#slice11", "nifti2.nii.gz#slice6"]
    assert _checksums(root.parent) == before


def test_4d_volume_choice(tmp_path):
    (tmp_path / "d" / "fmri").mkdir(parents=True)
    shutil.copy(_bundled("example4d.nii.gz"), tmp_path / "d" / "fmri" / "run.nii.gz")  # (128, 96, 24, 2)
    second = load_source("nifti_folder", path=str(tmp_path / "d"), slices="middle", volume=1, size=16)
    assert second.images.shape == (1, 1, 16, 16)
    with pytest.raises(ValueError, match=r"run.nii.gz: volume=5 outside"):
        load_source("nifti_folder", path=str(tmp_path / "d"), volume=5)


def test_quickstart_data_stage_on_nifti_folder(nifti_folder, tmp_path):
    """prepare_splits as the quickstart calls it, on a NIfTI folder: slices of a volume stay together."""
    root, labels_csv = nifti_folder
    splits = prepare_splits("nifti_folder", {"path": str(root), "labels_csv": str(labels_csv), "size": 16},
                            seed=0, manifest_path=tmp_path / "run" / "m.json")
    assert sum(len(part) for part in splits.values()) == 25 + 22 + 12
    manifest = load_split_manifest(tmp_path / "run" / "m.json")
    for volume in ("anat.nii", "moved.nii", "nifti2.nii.gz"):
        holding = {name for name in ("train", "val", "test")
                   if any(manifest.item_ids[i].startswith(volume + "#") for i in manifest.indices(name))}
        assert len(holding) == 1, volume


def test_export_then_read_matches(tmp_path):
    from medsyn.data.export import export_nifti

    images = torch.rand(2, 1, 5, 6, generator=torch.Generator().manual_seed(0))
    export_nifti(images, [0, 0], tmp_path / "n", class_names=["only"])
    folder = tmp_path / "n"
    back = load_source("nifti_folder", path=str(folder), labels_csv=str(folder / "labels.csv"), window=[0, 1])
    torch.testing.assert_close(back.images, images, atol=1e-6, rtol=0)


def test_drop_constant_slices():
    volume = np.zeros((4, 4, 5))
    volume[1:3, 1:3, 1:4] = np.arange(3.0) + 1  # slices 0 and 4 are empty
    kept, indices = nifti_slices(volume, where="v", window=(0, 3), drop_constant=True)
    assert indices == [1, 2, 3] and kept.shape == (3, 1, 4, 4)
    every, _ = nifti_slices(volume, where="v", window=(0, 3))
    np.testing.assert_array_equal(kept, every[1:4])
