"""The bad-input corpus (issue 6): every case is generated here, gives an error naming the offending file,
or under on_error="skip" a warning listing it and its count in the split manifest; inputs never change."""

import hashlib
import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
import tifffile
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from medsyn.data.chexpert import CHEXPERT_FINDINGS
from medsyn.data.sources import prepare_splits
from medsyn.data.split import load_split_manifest, make_split_manifest, save_split_manifest

pytestmark = pytest.mark.filterwarnings("ignore:.*nvImageCodec.*")


@dataclass
class Case:
    kind: str
    options: dict
    error: type  # raised with on_error="raise"
    names: str  # regex the error message must match (the offending file, row or folder)
    skippable: bool = True  # on_error="skip" leaves the file out and records it
    skipped: int = 1


# --- builders of valid inputs -----------------------------------------------------------------------------


def _dicom_variant(path: Path, name: str = "MR_small.dcm", marker: int = 0) -> Path:
    ds = pydicom.dcmread(get_testdata_file(name, download=False))
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    pixels = ds.pixel_array.copy()
    pixels[:2, :2] = marker * 7
    ds.PixelData = pixels.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path)
    return path


def _dicom_classes(root: Path, per_class: int = 3) -> list[Path]:
    paths = []
    for class_index, name in enumerate(("benign", "malignant")):
        for index in range(per_class):
            paths.append(_dicom_variant(root / name / f"{name}_{index}.dcm", marker=10 * class_index + index))
    return paths


def _labels_csv(path: Path, rows: list[tuple[str, str]], header=("path", "label")) -> Path:
    path.write_text("\n".join([",".join(header)] + [f"{a},{b}" for a, b in rows]) + "\n")
    return path


def _dicom_csv_folder(root: Path) -> tuple[Path, list[tuple[str, str]]]:
    files = _dicom_classes(root / "images")
    rows = [(str(p.relative_to(root / "images")), p.parent.name) for p in files]
    return root / "images", rows


def _nifti(path: Path, volume: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(volume.astype(np.float32), np.eye(4)), path)
    return path


def _nifti_classes(root: Path) -> list[Path]:
    rng = np.random.default_rng(0)
    return [_nifti(root / name / f"{name}_{i}.nii.gz", rng.random((8, 8, 3)))
            for name in ("a", "b") for i in range(3)]


def _png_classes(root: Path, per_class: int = 4) -> None:
    rng = np.random.default_rng(1)
    for name in ("polyp", "normal"):
        (root / name).mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            pixels = rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{index}.png")


# --- the corpus -----------------------------------------------------------------------------------------


def dicom_truncated_pixels(root):
    _dicom_classes(root)
    data = (root / "benign" / "benign_0.dcm").read_bytes()
    (root / "benign" / "truncated.dcm").write_bytes(data[: len(data) - 3000])
    return Case("dicom_folder", {"path": str(root), "size": 16}, ValueError, r"truncated\.dcm")


def dicom_truncated_header(root):
    _dicom_classes(root)
    (root / "benign" / "cut.dcm").write_bytes((root / "benign" / "benign_0.dcm").read_bytes()[:200])
    return Case("dicom_folder", {"path": str(root), "size": 16}, ValueError, r"cut\.dcm")


def dicom_missing_pixel_data(root):
    _dicom_classes(root)
    ds = pydicom.dcmread(_dicom_variant(root / "benign" / "nopixels.dcm", marker=99))
    del ds.PixelData
    ds.save_as(root / "benign" / "nopixels.dcm")
    return Case("dicom_folder", {"path": str(root), "size": 16}, ValueError, r"nopixels\.dcm: no pixel data")


def dicom_not_dicom(root):
    _dicom_classes(root)
    (root / "malignant" / "report.dcm").write_text("Patient report, not an image\n")
    return Case("dicom_folder", {"path": str(root), "size": 16}, ValueError, r"report\.dcm: not a DICOM file")


def dicom_empty_file(root):
    _dicom_classes(root)
    (root / "malignant" / "zero.dcm").write_bytes(b"")
    return Case("dicom_folder", {"path": str(root), "size": 16}, ValueError, r"zero\.dcm")


def dicom_undecodable_compression(root):
    from medsyn.data.dicom_pixels import decodable_transfer_syntaxes

    if "JPEG-LS Lossless Image Compression" in decodable_transfer_syntaxes():
        pytest.skip("a JPEG-LS decoder is installed here, so this file is not bad input")
    _dicom_classes(root)
    jpeg_ls = get_testdata_file("MR_small_jpeg_ls_lossless.dcm", download=False)
    shutil.copy(jpeg_ls, root / "benign" / "jls.dcm")
    return Case("dicom_folder", {"path": str(root), "size": 16}, ValueError, r"jls\.dcm")


def dicom_invalid_window_width(root):
    _dicom_classes(root)
    ds = pydicom.dcmread(_dicom_variant(root / "benign" / "window.dcm", marker=98))
    ds.WindowWidth = 0
    ds.save_as(root / "benign" / "window.dcm")
    return Case("dicom_folder", {"path": str(root), "size": 16}, ValueError, r"window\.dcm: window width")


def dicom_same_image_twice(root):
    _dicom_classes(root)
    ds = pydicom.dcmread(root / "benign" / "benign_0.dcm")
    ds.InstanceNumber = 42  # different bytes, same SOP Instance UID: the same image, would land in two splits
    ds.save_as(root / "malignant" / "copy.dcm")
    return Case("dicom_folder", {"path": str(root), "size": 16}, ValueError, r"copy\.dcm: SOPInstanceUID")


def dicom_identical_bytes(root):
    _dicom_classes(root)
    shutil.copy(root / "benign" / "benign_1.dcm", root / "malignant" / "dup.dcm")
    return Case("dicom_folder", {"path": str(root), "size": 16}, ValueError, r"dup\.dcm: same bytes as")


def dicom_mixed_sizes(root):
    _dicom_classes(root)
    _dicom_variant(root / "benign" / "ct.dcm", name="CT_small.dcm", marker=5)  # 128x128 among 64x64
    # (a CT among MRs: the modalities are allowed here so that the size is what is refused)
    return Case("dicom_folder", {"path": str(root), "allow_mixed_modalities": True}, ValueError,
                r"ct\.dcm: image shape \(1, 128, 128\)", skippable=False)


def dicom_mixed_modalities(root):
    _dicom_classes(root)
    _dicom_variant(root / "malignant" / "ct.dcm", name="CT_small.dcm", marker=5)
    return Case("dicom_folder", {"path": str(root), "size": 16}, ValueError,
                r"inputs mixes 2 modalities \(files per Modality: CT: 1, MR: 6\)", skippable=False)


def dicom_empty_class(root):
    _dicom_classes(root)
    (root / "unlabelled_yet").mkdir()
    return Case("dicom_folder", {"path": str(root), "size": 16}, ValueError,
                r"unlabelled_yet has no DICOM files", skippable=False)


def csv_names_missing_file(root):
    images, rows = _dicom_csv_folder(root)
    csv_path = _labels_csv(root / "labels.csv", rows + [("benign/ghost.dcm", "benign")])
    return Case("dicom_folder", {"path": str(images), "labels_csv": str(csv_path), "size": 16},
                FileNotFoundError, r"ghost\.dcm: listed in .*labels\.csv row 7")


def csv_unknown_label(root):
    images, rows = _dicom_csv_folder(root)
    rows[2] = (rows[2][0], "banana")
    csv_path = _labels_csv(root / "labels.csv", rows)
    return Case("dicom_folder", {"path": str(images), "labels_csv": str(csv_path), "size": 16,
                                 "class_names": ["benign", "malignant"]},
                ValueError, r"labels\.csv:row 3: unknown label 'banana'")


def csv_same_file_twice(root):
    images, rows = _dicom_csv_folder(root)
    csv_path = _labels_csv(root / "labels.csv", rows + [(rows[0][0], "malignant")])
    return Case("dicom_folder", {"path": str(images), "labels_csv": str(csv_path), "size": 16},
                ValueError, r"labels\.csv:row 7: .* already listed on row 1")


def csv_unknown_uid(root):
    images, rows = _dicom_csv_folder(root)
    uid_rows = [(str(pydicom.dcmread(images / path, stop_before_pixels=True).SOPInstanceUID), label)
                for path, label in rows]
    csv_path = _labels_csv(root / "uids.csv", uid_rows + [("1.2.3.999", "benign")],
                           header=("SOPInstanceUID", "label"))
    return Case("dicom_folder", {"path": str(images), "labels_csv": str(csv_path), "size": 16},
                FileNotFoundError, r"uids\.csv:row 7: SOPInstanceUID 1\.2\.3\.999 not found")


def csv_missing_label_column(root):
    images, rows = _dicom_csv_folder(root)
    csv_path = _labels_csv(root / "labels.csv", rows, header=("path", "diagnosis"))
    return Case("dicom_folder", {"path": str(images), "labels_csv": str(csv_path), "size": 16},
                ValueError, r"labels\.csv: missing column 'label'", skippable=False)


def nifti_with_nan(root):
    _nifti_classes(root)
    volume = np.random.default_rng(2).random((8, 8, 3))
    volume[3, 3, 1] = np.nan
    _nifti(root / "a" / "nan.nii.gz", volume)
    return Case("nifti_folder", {"path": str(root)}, ValueError, r"nan\.nii\.gz: volume contains NaN")


def nifti_not_nifti(root):
    _nifti_classes(root)
    (root / "b" / "scan.nii").write_text("not a NIfTI header")
    return Case("nifti_folder", {"path": str(root)}, ValueError, r"scan\.nii: not a readable NIfTI")


def nifti_truncated_gzip(root):
    _nifti_classes(root)
    data = (root / "a" / "a_0.nii.gz").read_bytes()
    (root / "a" / "short.nii.gz").write_bytes(data[: len(data) // 2])
    return Case("nifti_folder", {"path": str(root)}, ValueError, r"short\.nii\.gz")


def nifti_two_dimensional(root):
    _nifti_classes(root)
    path = root / "b" / "flat.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((8, 8), dtype=np.float32), np.eye(4)), path)
    return Case("nifti_folder", {"path": str(root)}, ValueError, r"flat\.nii\.gz: expected a 3D")


def nifti_constant_volume(root):
    _nifti_classes(root)
    _nifti(root / "b" / "blank.nii.gz", np.zeros((8, 8, 3)))
    return Case("nifti_folder", {"path": str(root)}, ValueError, r"blank\.nii\.gz: constant volume")


def nifti_csv_missing_file(root):
    files = _nifti_classes(root / "vols")
    rows = [(str(p.relative_to(root / "vols")), p.parent.name) for p in files] + [("a/gone.nii.gz", "a")]
    csv_path = _labels_csv(root / "labels.csv", rows)
    return Case("nifti_folder", {"path": str(root / "vols"), "labels_csv": str(csv_path)},
                FileNotFoundError, r"gone\.nii\.gz: listed in")


def image_unreadable(root):
    _png_classes(root)
    (root / "polyp" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(40))
    return Case("image_folder", {"path": str(root)}, ValueError, r"corrupt\.png: not a readable image")


def image_empty_class(root):
    _png_classes(root)
    (root / "ulcer").mkdir()
    return Case("image_folder", {"path": str(root)}, ValueError, r"ulcer has no image files", skippable=False)


def image_same_image_in_two_classes(root):
    _png_classes(root)
    shutil.copy(root / "normal" / "0.png", root / "polyp" / "zz_copy.png")  # "normal" is read first
    return Case("image_folder", {"path": str(root)}, ValueError, r"zz_copy\.png: same bytes as")


def image_mixed_sizes(root):
    _png_classes(root)
    Image.fromarray(np.zeros((30, 12, 3), dtype=np.uint8)).save(root / "normal" / "tall.png")
    return Case("image_folder", {"path": str(root)}, ValueError, r"tall\.png: image shape", skippable=False)


def image_float_outside_unit_range(root):
    _png_classes(root)
    hounsfield = np.linspace(-1000, 400, 144, dtype=np.float32).reshape(12, 12)
    tifffile.imwrite(root / "polyp" / "hu.tif", hounsfield)
    return Case("image_folder", {"path": str(root)}, ValueError,
                r"hu\.tif: float pixels span \[-1000, 400\], outside \[0, 1\]")


def image_outside_declared_range(root):
    _png_classes(root)
    Image.fromarray(np.full((12, 12), 5000, np.uint16)).save(root / "normal" / "hot.png")
    return Case("image_folder", {"path": str(root), "value_range": [0, 4095]}, ValueError,
                r"hot\.png: pixels span \[5000, 5000\], outside the declared value_range \[0, 4095\]")


def image_subject_pattern_misses(root):
    _png_classes(root)
    Image.fromarray(np.zeros((12, 12, 3), np.uint8)).save(root / "polyp" / "scan.png")
    return Case("image_folder", {"path": str(root), "subject_pattern": r"(\d+)\.png"}, ValueError,
                r"scan\.png: subject_pattern .* does not match its path 'polyp/scan\.png'")


def nifti_empty_subject(root):
    files = _nifti_classes(root / "vols")
    rows = [f"{p.relative_to(root / 'vols')},{p.parent.name},{'' if i == 1 else f's{i}'}"
            for i, p in enumerate(files)]
    (root / "labels.csv").write_text("\n".join(["path,label,subject"] + rows) + "\n")
    return Case("nifti_folder", {"path": str(root / "vols"), "labels_csv": str(root / "labels.csv"),
                                 "subject_column": "subject"}, ValueError,
                r"labels\.csv:row 2: empty subject column 'subject'")


def image_missing_root(root):
    return Case("image_folder", {"path": str(root / "not_there")}, FileNotFoundError, r"not_there",
                skippable=False)


def medmnist_label_mismatch(root):
    root.mkdir(parents=True, exist_ok=True)
    arrays = {f"{s}_images": np.zeros((4, 8, 8), np.uint8) for s in ("train", "val", "test")}
    arrays.update({f"{s}_labels": np.zeros((4, 1), np.uint8) for s in ("train", "val", "test")})
    arrays["val_labels"] = np.zeros((3, 1), np.uint8)
    np.savez(root / "organ.npz", **arrays)
    return Case("medmnist", {"path": str(root / "organ.npz")}, ValueError, r"organ\.npz: key 'val_labels'",
                skippable=False)


def chexpert_missing_image(root):
    header = ["Path", "Sex", "Age", "Frontal/Lateral", "AP/PA", *CHEXPERT_FINDINGS]
    lines = [",".join(header)]
    for patient in range(6):
        relative = f"train/patient{patient:05d}/study1/view1_frontal.jpg"
        lines.append(",".join([relative, "F", "50", "Frontal", "AP"] + ["1.0" if i == patient % 2 + 2 else ""
                                                                       for i in range(14)]))
        if patient != 4:
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((20, 16), 30 * patient, np.uint8)).save(root / relative)
    (root / "train.csv").write_text("\n".join(lines) + "\n")
    return Case("chexpert", {"path": str(root / "train.csv"), "size": 16}, FileNotFoundError,
                r"patient00004.*view1_frontal\.jpg: listed in")


CORPUS: list[Callable[[Path], Case]] = [
    dicom_truncated_pixels, dicom_truncated_header, dicom_missing_pixel_data, dicom_not_dicom,
    dicom_empty_file,
    dicom_undecodable_compression, dicom_invalid_window_width, dicom_same_image_twice, dicom_identical_bytes,
    dicom_mixed_sizes, dicom_mixed_modalities,
    dicom_empty_class, csv_names_missing_file, csv_unknown_label, csv_same_file_twice,
    csv_unknown_uid, csv_missing_label_column, nifti_with_nan, nifti_not_nifti, nifti_truncated_gzip,
    nifti_two_dimensional, nifti_constant_volume, nifti_csv_missing_file, image_unreadable, image_empty_class,
    image_same_image_in_two_classes, image_mixed_sizes, image_float_outside_unit_range,
    image_outside_declared_range, image_subject_pattern_misses, nifti_empty_subject,
    image_missing_root, medmnist_label_mismatch,
    chexpert_missing_image,
]


def _checksums(root: Path) -> dict[str, str]:
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


@pytest.mark.parametrize("build", CORPUS, ids=[build.__name__ for build in CORPUS])
def test_bad_input(build, tmp_path):
    inputs, outputs = tmp_path / "inputs", tmp_path / "outputs"
    inputs.mkdir()
    case = build(inputs)
    before = _checksums(inputs)

    with pytest.raises(case.error, match=case.names):
        prepare_splits(case.kind, case.options, seed=0, manifest_path=outputs / "raise.json")
    assert not (outputs / "raise.json").exists()
    assert _checksums(inputs) == before

    if case.skippable:
        file_pattern = case.names.split(":")[0]
        with pytest.warns(UserWarning, match=rf"skipped {case.skipped} file\(s\)[\s\S]*{file_pattern}"):
            prepare_splits(case.kind, {**case.options, "on_error": "skip"}, seed=0,
                           manifest_path=outputs / "skip.json")
        manifest = load_split_manifest(outputs / "skip.json")
        assert manifest.num_skipped == case.skipped
        assert json.loads((outputs / "skip.json").read_text())["num_skipped"] == case.skipped
        assert any(re.search(file_pattern, entry["file"]) for entry in manifest.skipped)
        everything = manifest.train + manifest.val + manifest.test
        assert sorted(everything) == list(range(manifest.num_items))  # what was kept is all split
    assert _checksums(inputs) == before


def test_manifest_with_same_image_in_two_splits(tmp_path):
    manifest = make_split_manifest(np.repeat([0, 1], 10), seed=0)
    path = save_split_manifest(manifest, tmp_path / "edited.json")
    record = json.loads(path.read_text())
    record["val"].append(record["test"][0])
    path.write_text(json.dumps(record))
    before = path.read_bytes()
    with pytest.raises(ValueError, match=r"edited\.json: item \d+ is in both 'val' and 'test'"):
        load_split_manifest(path)
    assert path.read_bytes() == before


def test_on_error_value_checked(tmp_path):
    _png_classes(tmp_path / "d")
    with pytest.raises(ValueError, match="on_error must be one of"):
        prepare_splits("image_folder", {"path": str(tmp_path / "d"), "on_error": "ignore"}, seed=0)


def test_corpus_is_large_enough():
    assert len(CORPUS) + 2 >= 20
