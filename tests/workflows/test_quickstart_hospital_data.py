"""The quickstart on hospital-style data (issue 6 "Must show"): a folder of DICOM files with labels from a
CSV, and a folder of NIfTI volumes with labels from a CSV, each run through ``run_quickstart`` with one tiny
generator. The DICOM files are pydicom's bundled CT and MR test files, copied with new UIDs and perturbed
pixels (the reader rejects duplicate UIDs and duplicate bytes)."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from medsyn.workflows.quickstart import run_quickstart

pydicom = pytest.importorskip("pydicom")
nibabel = pytest.importorskip("nibabel")

FILES_PER_CLASS = 10

TINY_RUN = {
    "models": {"cvae": {"config": {"hidden_dims": [8, 16], "latent_dim": 8, "steps": 10, "batch_size": 8}}},
    "seed": 0,
    "feature_batch_size": 32,
    "speed": {"count": 4, "warmup": 0, "repeats": 1},
    "classifier": {"arch": "small_cnn", "epochs": 1, "batch_size": 8, "lr": 1e-3},
    "robustness_steps": 2,
    "privacy": {"q": 4, "repeats": 2},
    "progress": False,
}


def _write_labels_csv(path: Path, rows: list[tuple[str, str]]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label"])
        writer.writerows(rows)


def _dicom_folder(root: Path) -> tuple[Path, Path]:
    """root/dicom/<modality>_<i>.dcm (10 CT, 10 MR copies) and root/dicom_labels.csv (path,label)."""
    from pydicom.data import get_testdata_file
    from pydicom.uid import generate_uid

    folder = root / "dicom"
    folder.mkdir()
    rows = []
    rng = np.random.default_rng(0)
    for label, name in (("ct", "CT_small.dcm"), ("mr", "MR_small.dcm")):
        source = get_testdata_file(name, download=False)
        assert source is not None, f"pydicom test file {name} is not bundled"
        for index in range(FILES_PER_CLASS):
            dataset = pydicom.dcmread(source)
            pixels = dataset.pixel_array.astype(np.int32)
            noise = rng.integers(-40, 41, size=pixels.shape)
            pixels = np.roll(pixels + noise, shift=index, axis=1)  # every copy a different image
            dataset.PixelData = np.clip(pixels, 0, 4000).astype(dataset.pixel_array.dtype).tobytes()
            dataset.SOPInstanceUID = generate_uid()
            dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
            dataset.PatientID = f"{label.upper()}{index:02d}"  # one patient per file
            file_name = f"{label}_{index:02d}.dcm"
            dataset.save_as(folder / file_name)
            rows.append((file_name, label))
    labels = root / "dicom_labels.csv"
    _write_labels_csv(labels, rows)
    return folder, labels


def _nifti_folder(root: Path) -> tuple[Path, Path]:
    """root/nifti/<class>_<i>.nii.gz: 16x16x3 volumes, a bright disc ("disc") or a bright square ("square")
    on noise, with root/nifti_labels.csv (path,label)."""
    folder = root / "nifti"
    folder.mkdir()
    rows = []
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:16, :16]
    shapes = {
        "disc": ((yy - 8) ** 2 + (xx - 8) ** 2 <= 25),
        "square": (abs(yy - 8) <= 4) & (abs(xx - 8) <= 4),
    }
    for label, mask in shapes.items():
        for index in range(FILES_PER_CLASS):
            volume = rng.normal(100.0, 10.0, size=(16, 16, 3)).astype(np.float32)
            volume[mask] += 400.0 + 20.0 * index
            file_name = f"{label}_{index:02d}.nii.gz"
            nibabel.save(nibabel.Nifti1Image(volume, affine=np.eye(4)), folder / file_name)
            rows.append((file_name, label))
    labels = root / "nifti_labels.csv"
    _write_labels_csv(labels, rows)
    return folder, labels


def _check_run(output_dir: Path, report_path: Path, class_names: list[str], n_items: int) -> dict:
    assert report_path == output_dir / "report.md" and report_path.read_text().strip()
    results = json.loads((output_dir / "results.json").read_text())
    cvae = results["synthetic_sets"]["cvae"]
    assert 0.0 <= cvae["utility"]["data_anonymization"]["1x"]["accuracy"]["mean"] <= 1.0
    assert cvae["fidelity"]["effnet_lite0"]["fid"]["mean"] >= 0.0
    data = results["metadata"]["data"]
    assert data["class_names"] == class_names and data["image_shape"] == [1, 32, 32]
    assert sum(data["split_sizes"].values()) == n_items and min(data["split_sizes"].values()) > 0
    with np.load(output_dir / "models" / "cvae" / "seed0" / "synthetic.npz") as synthetic:
        assert synthetic["images"].shape == (data["split_sizes"]["train"], 1, 32, 32)
    return results


def test_quickstart_runs_on_a_dicom_folder_with_labels_csv(tmp_path):
    folder, labels = _dicom_folder(tmp_path)
    output_dir = tmp_path / "run_dicom"
    data = {
        "kind": "dicom_folder",
        # CT and MR labelled by modality: allowed explicitly (a mixed-modality folder is refused by default)
        "options": {"path": str(folder), "labels_csv": str(labels), "size": 32,
                    "allow_mixed_modalities": True},
        "per_class": None,
    }
    report = run_quickstart(str(output_dir), data=data, **TINY_RUN)
    results = _check_run(output_dir, report, ["ct", "mr"], 2 * FILES_PER_CLASS)
    assert results["metadata"]["data"]["kind"] == "dicom_folder"
    manifest = json.loads((output_dir / "split_manifest.json").read_text())
    assert manifest["seed"] == 0


def test_quickstart_runs_on_a_nifti_folder_with_labels_csv(tmp_path):
    folder, labels = _nifti_folder(tmp_path)
    output_dir = tmp_path / "run_nifti"
    data = {
        "kind": "nifti_folder",
        "options": {"path": str(folder), "labels_csv": str(labels), "slices": "middle", "size": 32},
        "per_class": None,
    }
    report = run_quickstart(str(output_dir), data=data, **TINY_RUN)
    results = _check_run(output_dir, report, ["disc", "square"], 2 * FILES_PER_CLASS)
    assert results["metadata"]["data"]["kind"] == "nifti_folder"
