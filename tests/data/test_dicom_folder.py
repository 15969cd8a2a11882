import hashlib
import shutil

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from medsyn.data.dicom_folder import read_dicom_folder
from medsyn.data.dicom_pixels import dicom_frames
from medsyn.data.sources import load_source, prepare_splits
from medsyn.data.split import load_split_manifest

pytestmark = [
    pytest.mark.filterwarnings("ignore:.*nvImageCodec.*"),
    # CT and MR copies labelled by modality: the read is allowed and warned about (tested below)
    pytest.mark.filterwarnings("ignore:.*mixes 2 modalities.*allow_mixed_modalities=True"),
]



def _bundled_path(name):
    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"{name} is not bundled with this pydicom")
    return path


def _checksums(root):
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def _variants(out_dir, name, count, start=0):
    """``count`` copies of a bundled file with new UIDs, one patient each, and a different pixel marker."""
    ds = pydicom.dcmread(_bundled_path(name))
    paths = []
    for index in range(start, start + count):
        ds.PatientID = f"{name[:2]}{index:02d}"
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        pixels = ds.pixel_array.astype(np.int16)
        pixels[:4, :4] = index * 10  # a marker so every file differs
        ds.PixelData = pixels.tobytes()
        path = out_dir / f"{name[:-4]}_{index:02d}.dcm"
        ds.save_as(path)
        paths.append(path)
    return paths


@pytest.fixture
def ct_mr_folder(tmp_path):
    root = tmp_path / "study"
    root.mkdir()
    ct = _variants(root, "CT_small.dcm", 10)
    mr = _variants(root, "MR_small.dcm", 10)
    lines = ["path,label"] + [f"{p.name},ct" for p in ct] + [f"{p.name},mr" for p in mr]
    (tmp_path / "labels.csv").write_text("\n".join(lines) + "\n")
    return root, tmp_path / "labels.csv"


def test_labels_from_csv_paths(ct_mr_folder):
    root, labels_csv = ct_mr_folder
    before = _checksums(root.parent)
    data = read_dicom_folder(root, labels_csv=labels_csv, size=32, allow_mixed_modalities=True)
    assert _checksums(root.parent) == before
    images = data.sets
    assert images.images.shape == (20, 1, 32, 32)
    assert images.class_names == ("ct", "mr") and images.class_counts() == [10, 10]
    assert 0.0 <= float(images.images.min()) and float(images.images.max()) <= 1.0
    first = pydicom.dcmread(root / "CT_small_00.dcm")
    (root.parent / "ct_only.csv").write_text("path,label\nCT_small_00.dcm,ct\nCT_small_01.dcm,ct\n")
    native = read_dicom_folder(root, labels_csv=root.parent / "ct_only.csv", size=None).sets
    np.testing.assert_allclose(native.images[0].numpy(), dicom_frames(first, where="x")[0], atol=1e-7)


def test_labels_from_csv_uids(ct_mr_folder, tmp_path):
    root, _ = ct_mr_folder
    rows = ["SOPInstanceUID,label"]
    for path in sorted(root.iterdir()):
        uid = pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID
        rows.append(f"{uid},{path.name[:2].lower()}")
    (tmp_path / "uids.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(ValueError, match=r"mixes 2 modalities \(files per Modality: CT: 10, MR: 10\)"):
        read_dicom_folder(root, labels_csv=tmp_path / "uids.csv", size=16)
    images = load_source("dicom_folder", path=str(root), labels_csv=str(tmp_path / "uids.csv"), size=16,
                         allow_mixed_modalities=True)
    assert images.class_counts() == [10, 10]


def test_labels_from_folder_names(tmp_path):
    _variants((tmp_path / "d" / "ct").mkdir(parents=True) or tmp_path / "d" / "ct", "CT_small.dcm", 3)
    _variants((tmp_path / "d" / "mr").mkdir(parents=True) or tmp_path / "d" / "mr", "MR_small.dcm", 2)
    (tmp_path / "d" / "mr" / "notes.txt").write_text("ignored: not a DICOM suffix")
    images = load_source("dicom_folder", path=str(tmp_path / "d"), size=16, allow_mixed_modalities=True)
    assert images.class_names == ("ct", "mr") and images.class_counts() == [3, 2]


def test_multiframe_frames_stay_in_one_split(tmp_path):
    (tmp_path / "d" / "dose").mkdir(parents=True)
    (tmp_path / "d" / "other").mkdir(parents=True)
    shutil.copy(_bundled_path("rtdose.dcm"), tmp_path / "d" / "dose" / "a.dcm")
    shutil.copy(_bundled_path("rtdose_rle.dcm"), tmp_path / "d" / "dose" / "b.dcm")
    _variants(tmp_path / "d" / "other", "MR_small.dcm", 2)
    # rtdose and rtdose_rle share their SOPInstanceUID: the second is the same image again
    with pytest.raises(ValueError, match=r"b.dcm: SOPInstanceUID .* is also in .*a.dcm"):
        read_dicom_folder(tmp_path / "d", size=10, allow_mixed_modalities=True)
    (tmp_path / "d" / "dose" / "b.dcm").unlink()
    data = read_dicom_folder(tmp_path / "d", size=10, allow_mixed_modalities=True)
    assert len(data.sets) == 15 + 2 and data.item_ids[0] == "dose/a.dcm#frame0"
    manifest_path = tmp_path / "m.json"
    prepare_splits("dicom_folder", {"path": str(tmp_path / "d"), "size": 10, "frames": "all",
                                    "allow_mixed_modalities": True}, seed=0, manifest_path=manifest_path)
    manifest = load_split_manifest(manifest_path)
    frame_splits = {name for name in ("train", "val", "test") if any(i < 15 for i in manifest.indices(name))}
    assert len(frame_splits) == 1  # all 15 frames of a.dcm in one split
    middle = read_dicom_folder(tmp_path / "d", size=10, frames="middle", allow_mixed_modalities=True)
    assert len(middle.sets) == 1 + 2


def test_colour_kept_or_grey(tmp_path):
    (tmp_path / "d" / "rgb").mkdir(parents=True)
    shutil.copy(_bundled_path("SC_rgb_rle.dcm"), tmp_path / "d" / "rgb" / "a.dcm")
    shutil.copy(_bundled_path("SC_rgb_jpeg_dcmtk.dcm"), tmp_path / "d" / "rgb" / "b.dcm")
    keep = load_source("dicom_folder", path=str(tmp_path / "d"), color="keep", size=20)
    grey = load_source("dicom_folder", path=str(tmp_path / "d"), color="grey", size=20)
    assert keep.images.shape == (2, 3, 20, 20) and grey.images.shape == (2, 1, 20, 20)


def test_quickstart_data_stage_on_dicom_folder(ct_mr_folder, tmp_path):
    """The data stage of the quickstart (prepare_splits, as the bundle calls it) on DICOM + labels CSV."""
    root, labels_csv = ct_mr_folder
    before = _checksums(root.parent)
    splits = prepare_splits("dicom_folder", {"path": str(root), "labels_csv": str(labels_csv), "size": 32,
                                             "allow_mixed_modalities": True},
                            seed=0, per_class=4, manifest_path=tmp_path / "run" / "split_manifest.json")
    assert [splits[name].class_counts() for name in ("train", "val", "test")] == [[4, 4], [1, 1], [1, 1]]
    manifest = load_split_manifest(tmp_path / "run" / "split_manifest.json")
    assert manifest.item_ids[0] == "CT_small_00.dcm" and manifest.num_skipped == 0
    assert {k: v for k, v in _checksums(root.parent).items() if "run" not in k.parts} == before


def test_dicomdir_and_other_files_ignored_in_folder_mode(tmp_path):
    _variants((tmp_path / "d" / "a").mkdir(parents=True) or tmp_path / "d" / "a", "MR_small.dcm", 2)
    (tmp_path / "d" / "a" / "DICOMDIR").write_bytes(b"not read: the index of a DICOM CD")
    (tmp_path / "d" / "a" / "thumbs.jpg").write_bytes(b"not read: not a DICOM suffix")
    assert len(read_dicom_folder(tmp_path / "d").sets) == 2


def _cropped_ct(path, rows, marker):
    """CT_small cut to ``rows`` x ``rows`` pixels (a CT of another size), with its own UIDs and patient."""
    ds = pydicom.dcmread(_bundled_path("CT_small.dcm"))
    pixels = ds.pixel_array.astype(np.int16)[:rows, :rows].copy()
    pixels[:2, :2] = marker
    ds.Rows = ds.Columns = rows
    ds.PixelData = pixels.tobytes()
    ds.PatientID = f"P{marker}"
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.save_as(path)


def test_mixed_modalities_refused_unless_allowed(tmp_path):
    _variants((tmp_path / "d" / "a").mkdir(parents=True) or tmp_path / "d" / "a", "CT_small.dcm", 3)
    _variants((tmp_path / "d" / "b").mkdir(parents=True) or tmp_path / "d" / "b", "MR_small.dcm", 2)
    before = _checksums(tmp_path / "d")
    with pytest.raises(ValueError, match=r"DICOM folder .*/d mixes 2 modalities \(files per Modality: CT: 3, "
                                         r"MR: 2\).*set allow_mixed_modalities: true"):
        read_dicom_folder(tmp_path / "d", size=16)
    with pytest.warns(UserWarning, match=r"mixes 2 modalities \(files per Modality: CT: 3, MR: 2\); read"):
        data = read_dicom_folder(tmp_path / "d", size=16, allow_mixed_modalities=True)
    assert data.sets.class_counts() == [3, 2]
    # a file without Modality counts as its own value, "(none)"
    ds = pydicom.dcmread(tmp_path / "d" / "b" / "MR_small_00.dcm")
    del ds.Modality
    ds.save_as(tmp_path / "d" / "b" / "MR_small_00.dcm")
    expected = r"mixes 3 modalities \(files per Modality: \(none\): 1, CT: 3, MR: 1\)"
    with pytest.raises(ValueError, match=expected):
        read_dicom_folder(tmp_path / "d", size=16)
    with pytest.raises(ValueError, match="allow_mixed_modalities must be true or false, got 'yes'"):
        read_dicom_folder(tmp_path / "d", allow_mixed_modalities="yes")
    assert {k: v for k, v in _checksums(tmp_path / "d").items() if k.name != "MR_small_00.dcm"} == {
        k: v for k, v in before.items() if k.name != "MR_small_00.dcm"}


def test_mixed_sizes_warned_when_resized_refused_when_not(tmp_path):
    (tmp_path / "d" / "ct").mkdir(parents=True)
    for index in range(3):
        _cropped_ct(tmp_path / "d" / "ct" / f"big{index}.dcm", 128, index)
    _cropped_ct(tmp_path / "d" / "ct" / "small.dcm", 64, 9)
    before = _checksums(tmp_path / "d")
    with pytest.warns(UserWarning, match=r"frames of 2 sizes \(files per rows x columns: 64x64: 1, 128x128: 3\) "
                                         r"are all resized to 32x32"):
        data = read_dicom_folder(tmp_path / "d", size=32)
    assert data.sets.images.shape == (4, 1, 32, 32)
    with pytest.raises(ValueError, match=r"small\.dcm: image shape \(1, 64, 64\) differs from .*big0\.dcm"):
        read_dicom_folder(tmp_path / "d", size=None)
    assert _checksums(tmp_path / "d") == before
