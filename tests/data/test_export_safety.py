"""Exporters leak nothing and stay in out_dir: identifiers planted in the coded attributes a DICOM export may
copy are dropped, class names cannot steer a write outside ``out_dir``, and files honour the umask."""

import hashlib
import os
from pathlib import Path

import pydicom
import pytest
import torch
from pydicom.data import get_testdata_file

from medsyn.data.export import export_dicom, export_nifti, export_png
from medsyn.data.labelled_folder import load_labelled_folder

pytestmark = [
    pytest.mark.filterwarnings("ignore:.*nvImageCodec.*"),
    pytest.mark.filterwarnings("ignore:.*ImageOrientationPatient.*"),
    pytest.mark.filterwarnings("ignore:.*Invalid value for VR.*"),
]

# Identifiers typed into attributes export_dicom may copy; each is valid for its VR, so only the check
# against the standard's defined terms stops it.
PLANTED_CODES = {
    "Modality": "MRN 12345678",
    "ViewPosition": "JOHNDOE XQZ",
    "BodyPartExamined": "WARD SEVEN BED3",
    "Laterality": "Q",
    "PhotometricInterpretation": "MONOCHROME2 JD",
    "ImageLaterality": "ZZTOP",  # coded attributes export_dicom never copies
    "PatientPosition": "SMITHJ",
}
PLANTED_NUMBERS = {"PixelSpacing": ["98765.4321", "1"], "ImagerPixelSpacing": ["0", "24680135"]}
# Digit needles are 8+ characters so a random UID of the export cannot contain one by chance.
NEEDLES = [b"12345678", b"JOHNDOE", b"WARD SEVEN", b"BED3", b"MONOCHROME2 JD", b"98765.4321", b"24680135",
           b"ZZTOP", b"SMITHJ"]


def _tree(root: Path) -> list[str]:
    """Every path under ``root`` except medsyn's own bookkeeping files (.medsyn-*)."""
    paths = (p.relative_to(root) for p in root.rglob("*"))
    return sorted(str(p) for p in paths if not any(part.startswith(".medsyn") for part in p.parts))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def coded_reference(tmp_path):
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm", download=False))
    for keyword, value in {**PLANTED_CODES, **PLANTED_NUMBERS}.items():
        setattr(ds, keyword, value)
    path = tmp_path / "reference" / "ref.dcm"
    path.parent.mkdir()
    ds.save_as(path)
    return path


def test_identifiers_planted_in_coded_attributes_are_never_exported(coded_reference, tmp_path):
    reference_bytes = coded_reference.read_bytes()
    assert all(needle in reference_bytes for needle in NEEDLES)
    before = _sha256(coded_reference)
    images = torch.rand(3, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    paths = export_dicom(images, [0, 1, 0], tmp_path / "out", reference=coded_reference, class_names=["a", "b"])
    for path in [*paths, tmp_path / "out" / "labels.csv"]:
        data = path.read_bytes()
        for needle in NEEDLES:
            assert needle not in data, f"{needle!r} leaked into {path.name}"
    ds = pydicom.dcmread(paths[0])
    assert ds.Modality == "OT" and ds.PhotometricInterpretation == "MONOCHROME2"
    for keyword in ("ViewPosition", "BodyPartExamined", "Laterality", "PixelSpacing", "ImagerPixelSpacing"):
        assert keyword not in ds, keyword
    assert _sha256(coded_reference) == before


def test_defined_terms_and_plausible_spacing_are_kept(tmp_path):
    reference = pydicom.dcmread(get_testdata_file("CT_small.dcm", download=False))
    reference.Modality, reference.ViewPosition, reference.BodyPartExamined = "DX", "PA", "CHEST"
    reference.Laterality = "L"
    reference.Rows, reference.PixelSpacing = 32, ["0.5", "0.25"]
    path = export_dicom(torch.rand(1, 1, 16, 16), [0], tmp_path / "out", reference=reference)[0]
    ds = pydicom.dcmread(path)
    assert (ds.Modality, ds.ViewPosition, ds.BodyPartExamined) == ("DX", "PA", "CHEST")
    assert ds.Laterality == "L"
    assert [float(v) for v in ds.PixelSpacing] == [1.0, 0.5]  # same field of view with half the rows


def test_png_class_names_cannot_write_outside_out_dir(tmp_path):
    names = ["../../escaped", "/tmp/absolute_class", "..", "ok"]
    images = torch.rand(4, 1, 6, 6, generator=torch.Generator().manual_seed(1))
    out = tmp_path / "deep" / "out"
    export_png(images, [0, 1, 2, 3], out, class_names=names)
    assert _tree(tmp_path) == [
        "deep",
        "deep/out",
        "deep/out/_.",
        "deep/out/_./synthetic_000002.png",
        "deep/out/_._.._escaped",
        "deep/out/_._.._escaped/synthetic_000000.png",
        "deep/out/_tmp_absolute_class",
        "deep/out/_tmp_absolute_class/synthetic_000001.png",
        "deep/out/labels.csv",
        "deep/out/ok",
        "deep/out/ok/synthetic_000003.png",
    ]
    assert not Path("/tmp/absolute_class").exists()
    # labels.csv keeps the original names, so the set reads back with the real data's classes
    back = load_labelled_folder(out, out / "labels.csv", class_names=names, image_shape=(1, 6, 6))
    assert back.labels.tolist() == [0, 1, 2, 3]


def test_png_classes_that_clash_after_sanitising_write_nothing(tmp_path):
    with pytest.raises(ValueError, match="map to the same folder name 'a_b'"):
        export_png(torch.rand(2, 1, 4, 4), [0, 1], tmp_path / "out", class_names=["a/b", "a:b"])
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("exporter", [export_png, export_dicom, export_nifti])
def test_files_written_honour_the_umask(tmp_path, exporter):
    previous = os.umask(0o027)
    try:
        paths = exporter(torch.rand(2, 1, 4, 4), [0, 1], tmp_path / "out", class_names=["a", "b"])
    finally:
        os.umask(previous)
    for path in [*paths, tmp_path / "out" / "labels.csv"]:
        assert path.stat().st_mode & 0o777 == 0o640, path
