"""A CSV row whose path resolves outside its data folder (``../real_patients/...``, an absolute path, a symlink
out) is refused naming the CSV, the row and the path, for every source that reads paths from a CSV, unless
``allow_outside_root`` is set; nothing is modified either way."""

import hashlib
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from medsyn.data.chexpert import CHEXPERT_FINDINGS
from medsyn.data.export import export_dicom, export_nifti, export_png
from medsyn.data.labelled_folder import load_labelled_folder
from medsyn.data.sources import load_source

pytestmark = [pytest.mark.filterwarnings("ignore:.*nvImageCodec.*")]

FORMS = ["relative", "absolute", "symlink"]


def _checksums(root: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def _listed(form: str, root: Path, real: Path) -> str:
    """How a row names the real file: ../real_patients/..., its absolute path, or a symlink inside root."""
    if form == "relative":
        return f"../{real.parent.name}/{real.name}"
    if form == "absolute":
        return str(real)
    (root / f"link{real.suffix}").symlink_to(real)
    return f"link{real.suffix}"


def _images(n: int, seed: int) -> torch.Tensor:
    return torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed))


def _expect_refusal(csv_path: Path, row: int, listed: str, real: Path, root: Path):
    message = (
        rf"{re.escape(str(csv_path))}, row {row}: path {re.escape(repr(listed))} resolves to "
        rf"{re.escape(str(real.resolve()))}, outside the data folder {re.escape(str(root.resolve()))}"
    )
    return pytest.raises(ValueError, match=message)


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("on_error", ["raise", "skip"])
def test_dicom_folder_refuses_a_row_outside_its_folder(tmp_path, form, on_error):
    real = export_dicom(_images(1, 0), [0], tmp_path / "real_patients")[0]
    root = tmp_path / "data"
    export_dicom(_images(2, 1), [0, 1], root, class_names=["a", "b"])
    csv_path = tmp_path / "labels.csv"
    listed = _listed(form, root, real)
    csv_path.write_text(f"path,label\nsynthetic_000000.dcm,a\n{listed},b\n")
    before = _checksums(tmp_path)
    with _expect_refusal(csv_path, 2, listed, real, root):
        load_source("dicom_folder", path=str(root), labels_csv=str(csv_path), on_error=on_error)
    assert _checksums(tmp_path) == before
    allowed = load_source("dicom_folder", path=str(root), labels_csv=str(csv_path), allow_outside_root=True)
    assert allowed.labels.tolist() == [0, 1]


@pytest.mark.parametrize("form", FORMS)
def test_nifti_folder_refuses_a_row_outside_its_folder(tmp_path, form):
    real = export_nifti(_images(1, 0), [0], tmp_path / "real_patients")[0]
    root = tmp_path / "data"
    export_nifti(_images(1, 1), [0], root)
    csv_path = tmp_path / "labels.csv"
    listed = _listed(form, root, real)
    csv_path.write_text(f"path,label\nsynthetic_000000.nii.gz,a\n{listed},b\n")
    before = _checksums(tmp_path)
    with _expect_refusal(csv_path, 2, listed, real, root):
        load_source("nifti_folder", path=str(root), labels_csv=str(csv_path), window=[0.0, 1.0])
    assert _checksums(tmp_path) == before
    allowed = load_source("nifti_folder", path=str(root), labels_csv=str(csv_path), window=[0.0, 1.0],
                          allow_outside_root=True)
    assert allowed.labels.tolist() == [0, 1]


def _chexpert_row(path: str) -> str:
    findings = ["1.0" if name == "Edema" else "" for name in CHEXPERT_FINDINGS]
    return ",".join([path, "Female", "60", "Frontal", "AP", *findings])


@pytest.mark.parametrize("form", FORMS)
def test_chexpert_refuses_a_row_outside_its_image_root(tmp_path, form):
    pixels = np.arange(64, dtype=np.uint8).reshape(8, 8)
    real = tmp_path / "real_patients" / "p1.png"
    real.parent.mkdir()
    Image.fromarray(pixels, mode="L").save(real)
    root = tmp_path / "chexpert"
    (root / "train").mkdir(parents=True)
    Image.fromarray(pixels, mode="L").save(root / "train" / "view1_frontal.png")
    listed = _listed(form, root, real)
    header = ",".join(["Path", "Sex", "Age", "Frontal/Lateral", "AP/PA", *CHEXPERT_FINDINGS])
    csv_path = root / "train.csv"
    csv_path.write_text("\n".join([header, _chexpert_row("train/view1_frontal.png"), _chexpert_row(listed)]) + "\n")
    before = _checksums(tmp_path)
    with _expect_refusal(csv_path, 2, listed, real, root):
        load_source("chexpert", path=str(csv_path), image_root=str(root), size=8)
    assert _checksums(tmp_path) == before
    allowed = load_source("chexpert", path=str(csv_path), image_root=str(root), size=8, allow_outside_root=True)
    assert len(allowed) == 2


@pytest.mark.parametrize("form", FORMS)
def test_synthetic_labelled_folder_cannot_pull_in_real_images(tmp_path, form):
    real = tmp_path / "real_patients" / "p1.png"
    real.parent.mkdir()
    Image.fromarray(np.zeros((8, 8), dtype=np.uint8), mode="L").save(real)
    folder = tmp_path / "synthetic"
    export_png(_images(2, 2), [0, 1], folder, class_names=["neg", "pos"])
    csv_path = folder / "labels.csv"
    listed = _listed(form, folder, real)
    csv_path.write_text(csv_path.read_text() + f"{listed},pos\n")
    before = _checksums(tmp_path)
    message = (
        rf"labels CSV {re.escape(str(csv_path))}, row 3: path {re.escape(repr(listed))} resolves to "
        rf"{re.escape(str(real.resolve()))}, outside the data folder"
    )
    with pytest.raises(ValueError, match=message):
        load_labelled_folder(folder, csv_path, class_names=["neg", "pos"], image_shape=(1, 8, 8))
    assert _checksums(tmp_path) == before
    allowed = load_labelled_folder(folder, csv_path, class_names=["neg", "pos"], image_shape=(1, 8, 8),
                                   allow_outside_root=True)
    assert allowed.labels.tolist() == [0, 1, 1] and float(allowed.images[2].max()) == 0.0


def test_rows_inside_the_folder_through_dot_dot_are_accepted(tmp_path):
    """Only where a path ends up counts: sub/../x.png inside the folder is fine."""
    folder = tmp_path / "synthetic"
    export_png(_images(1, 3), [0], folder, class_names=["neg"])
    (folder / "sub").mkdir()
    csv_path = folder / "labels.csv"
    csv_path.write_text("filename,label\nsub/../neg/synthetic_000000.png,neg\n")
    assert len(load_labelled_folder(folder, csv_path, class_names=["neg"], image_shape=(1, 8, 8))) == 1
