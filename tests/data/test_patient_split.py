"""Patient integrity: all files of a patient (or subject) land in one split; no identifier is written."""

import hashlib
import json

import nibabel as nib
import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from medsyn.data.dicom_folder import read_dicom_folder
from medsyn.data.image_folder import read_image_folder
from medsyn.data.nifti_folder import read_nifti_folder
from medsyn.data.sources import prepare_splits
from medsyn.data.split import SPLIT_NAMES, load_split_manifest, make_split_manifest

pytestmark = [pytest.mark.filterwarnings("ignore:.*nvImageCodec.*")]

SEEDS = (0, 1, 2, 3, 7, 42)


def _checksums(root):
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def _ct(path, *, patient=None, study=None, marker=0, modality=None):
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm", download=False))
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    if patient is None:
        del ds.PatientID
    else:
        ds.PatientID = patient
    if study is None:
        del ds.StudyInstanceUID
    else:
        ds.StudyInstanceUID = study
    if modality is not None:
        ds.Modality = modality
    pixels = ds.pixel_array.astype(np.int16)
    pixels[:4, :4] = marker  # every file differs (identical bytes would be refused as a duplicate)
    ds.PixelData = pixels.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path)
    return path


def _twelve_patients(root):
    """12 patients (6 per class), 2-5 files each, in a flat folder whose file names do not reveal the patient.

    Returns {file name: PatientID}.
    """
    patient_of = {}
    counter = 0
    for patient in range(12):
        label = "normal" if patient % 2 else "nodule"
        for _ in range(2 + patient % 4):
            name = f"img{counter:03d}.dcm"
            _ct(root / "scans" / name, patient=f"PID-{patient:04d}-X", marker=counter * 7, modality="CT")
            patient_of[name] = (f"PID-{patient:04d}-X", label)
            counter += 1
    rows = ["path,label"] + [f"{name},{label}" for name, (_, label) in patient_of.items()]
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return {name: pid for name, (pid, _) in patient_of.items()}


def _splits_per_patient(manifest, patient_of):
    where = {}
    for split in SPLIT_NAMES:
        for index in manifest.indices(split):
            name = manifest.item_ids[index].split("/")[-1]
            where.setdefault(patient_of[name], set()).add(split)
    return where


def test_dicom_folder_keeps_every_patient_in_one_split(tmp_path):
    root = tmp_path / "study"
    patient_of = _twelve_patients(root)
    before = _checksums(root)
    for seed in SEEDS:
        manifest_path = tmp_path / f"run{seed}" / "split_manifest.json"
        options = {"path": str(root / "scans"), "labels_csv": str(root / "labels.csv"), "size": 16}
        splits = prepare_splits("dicom_folder", options, seed=seed, manifest_path=manifest_path)
        manifest = load_split_manifest(manifest_path)
        where = _splits_per_patient(manifest, patient_of)
        assert len(where) == 12
        straddling = {pid: sorted(s) for pid, s in where.items() if len(s) > 1}
        assert straddling == {}, f"seed {seed}: patients in two splits {straddling}"
        # 6 patients per class: 1 val and 1 test patient per class, the other 4 in train
        assert manifest.group_counts == {"train": 8, "val": 2, "test": 2}
        # stratified: one patient of each class in val and in test
        assert set(splits["val"].labels.tolist()) == set(splits["test"].labels.tolist()) == {0, 1}
        assert sum(len(splits[name]) for name in SPLIT_NAMES) == len(patient_of)
        text = manifest_path.read_text()
        record = json.loads(text)
        assert record["group_key"] == "PatientID" and record["group_fallbacks"] == {}
        assert "PID-" not in text  # no PatientID value reaches the manifest
    assert _checksums(root) == before


def test_dicom_patient_split_depends_on_seed(tmp_path):
    root = tmp_path / "study"
    _twelve_patients(root)
    options = {"path": str(root / "scans"), "labels_csv": str(root / "labels.csv"), "size": 8}
    tests = set()
    for seed in SEEDS:
        prepare_splits("dicom_folder", options, seed=seed, manifest_path=tmp_path / "m.json")
        tests.add(tuple(load_split_manifest(tmp_path / "m.json").test))
    assert len(tests) > 1
    prepare_splits("dicom_folder", options, seed=SEEDS[-1], manifest_path=tmp_path / "m2.json")
    assert load_split_manifest(tmp_path / "m2.json").test == load_split_manifest(tmp_path / "m.json").test


def test_dicom_fallback_to_study_then_file_is_recorded(tmp_path):
    root = tmp_path / "d" / "ct"
    study = generate_uid()
    _ct(root / "a.dcm", patient="P1", marker=1)
    _ct(root / "b.dcm", patient="P1", marker=2)
    _ct(root / "c.dcm", patient=None, study=study, marker=3)
    _ct(root / "d.dcm", patient="  ", study=study, marker=4)  # blank PatientID counts as missing
    _ct(root / "e.dcm", patient=None, study=None, marker=5)
    expected = r"3 file\(s\) have no PatientID.*StudyInstanceUID: 2, file: 1.*c\.dcm"
    with pytest.warns(UserWarning, match=expected):
        data = read_dicom_folder(tmp_path / "d")
    assert data.group_key == "PatientID"
    assert data.group_fallbacks == {"StudyInstanceUID": 2, "file": 1}
    assert len(set(data.groups)) == 3  # P1, the study, the lone file
    assert data.groups[0] == data.groups[1] and data.groups[2] == data.groups[3] != data.groups[4]
    assert not any(study in g or "P1" in g for g in data.groups)  # hashed, not the identifier itself


def test_dicom_group_by_study_or_file(tmp_path):
    root = tmp_path / "d" / "ct"
    s1, s2 = generate_uid(), generate_uid()
    _ct(root / "a.dcm", patient="P1", study=s1, marker=1)
    _ct(root / "b.dcm", patient="P1", study=s2, marker=2)
    _ct(root / "c.dcm", patient="P1", study=s2, marker=3)
    assert len(set(read_dicom_folder(tmp_path / "d").groups)) == 1
    by_study = read_dicom_folder(tmp_path / "d", group_by="StudyInstanceUID")
    assert by_study.group_key == "StudyInstanceUID" and len(set(by_study.groups)) == 2
    by_file = read_dicom_folder(tmp_path / "d", group_by="file")
    assert by_file.group_key == "file" and len(set(by_file.groups)) == 3
    with pytest.raises(ValueError, match=r"group_by must be one of .*PatientID.*got 'patient'"):
        read_dicom_folder(tmp_path / "d", group_by="patient")


def test_group_with_several_labels_uses_its_majority_label():
    # group g0 has two items of class 0 and one of class 1: it counts as class 0 and stays whole
    labels = [0, 0, 1] + [0] * 9 + [1] * 10
    groups = ["g0", "g0", "g0"] + [f"a{i}" for i in range(9)] + [f"b{i}" for i in range(10)]
    for seed in SEEDS:
        manifest = make_split_manifest(labels, seed=seed, groups=groups, group_key="PatientID")
        holding = {name for name in SPLIT_NAMES if set(manifest.indices(name)) & {0, 1, 2}}
        assert len(holding) == 1
        assert manifest.mixed_label_groups == 1
        # 10 class-0 groups and 10 class-1 groups: 8/1/1 of each
        assert sum(manifest.group_counts.values()) == 20
        assert manifest.group_counts == {"train": 16, "val": 2, "test": 2}


def test_split_manifest_without_groups_counts_items():
    manifest = make_split_manifest(np.repeat([0, 1], 10), seed=0)
    assert manifest.group_key == "item" and manifest.group_counts == {"train": 16, "val": 2, "test": 2}
    with pytest.raises(ValueError, match="group_key needs groups"):
        make_split_manifest(np.repeat([0, 1], 10), seed=0, group_key="PatientID")


def test_reused_manifest_that_splits_a_patient_is_refused(tmp_path):
    root = tmp_path / "study"
    _twelve_patients(root)
    options = {"path": str(root / "scans"), "labels_csv": str(root / "labels.csv"), "size": 8}
    prepare_splits("dicom_folder", options, seed=0, manifest_path=tmp_path / "m.json")
    record = json.loads((tmp_path / "m.json").read_text())
    # an old manifest made file by file: move one file of a test patient to train
    moved = record["test"].pop(0)
    record["train"] = sorted(record["train"] + [moved])
    (tmp_path / "old.json").write_text(json.dumps(record))
    with pytest.raises(ValueError, match=r"old.json puts 1 of the 12 PatientID groups in more than one"):
        prepare_splits("dicom_folder", options, seed=0, existing_manifest=tmp_path / "old.json")


def _volume(path, value):
    volume = np.zeros((6, 6, 3), np.float32)
    volume[1:5, 1:5, :] = value
    volume[0, 0, 0] = value + 1
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(volume, np.eye(4)), path)


def test_nifti_subject_column_keeps_a_subject_whole(tmp_path):
    root = tmp_path / "mri"
    rows = ["path,label,subject"]
    for index in range(24):
        subject = f"sub-{index // 2:02d}"  # 12 subjects of 2 volumes (e.g. two sessions)
        _volume(root / f"v{index:02d}.nii.gz", index + 1)
        rows.append(f"v{index:02d}.nii.gz,{'ad' if (index // 2) % 2 else 'cn'},{subject}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    subject_of = {f"v{index:02d}.nii.gz": f"sub-{index // 2:02d}" for index in range(24)}
    before = _checksums(root)
    for seed in SEEDS:
        path = tmp_path / "m.json"
        prepare_splits("nifti_folder", {"path": str(root), "labels_csv": str(root / "labels.csv"),
                                        "subject_column": "subject"}, seed=seed, manifest_path=path)
        manifest = load_split_manifest(path)
        where = {}
        for split in SPLIT_NAMES:
            for index in manifest.indices(split):
                where.setdefault(subject_of[manifest.item_ids[index].split("#")[0]], set()).add(split)
        assert len(where) == 12 and all(len(s) == 1 for s in where.values())
        assert manifest.group_key == "subject_column:subject"
        assert manifest.group_counts == {"train": 8, "val": 2, "test": 2}
        assert "sub-" not in path.read_text()
    assert _checksums(root) == before
    # without the subject column each volume is its own group
    plain = read_nifti_folder(root, labels_csv=root / "labels.csv")
    assert plain.group_key == "file" and len(set(plain.groups)) == 24


def test_nifti_subject_options_bad_input(tmp_path):
    root = tmp_path / "mri"
    _volume(root / "cn" / "a.nii.gz", 1)
    _volume(root / "cn" / "b.nii.gz", 2)
    (tmp_path / "labels.csv").write_text("path,label,subject\ncn/a.nii.gz,cn,s1\ncn/b.nii.gz,cn,\n")
    with pytest.raises(ValueError, match=r"labels.csv:row 2: empty subject column 'subject'"):
        read_nifti_folder(root, labels_csv=tmp_path / "labels.csv", subject_column="subject")
    with pytest.raises(ValueError, match=r"labels.csv: missing subject column 'patient' \(columns: "):
        read_nifti_folder(root, labels_csv=tmp_path / "labels.csv", subject_column="patient")
    with pytest.raises(ValueError, match="subject_column needs labels_csv"):
        read_nifti_folder(root, subject_column="subject")
    with pytest.raises(ValueError, match="give subject_column or subject_pattern, not both"):
        read_nifti_folder(root, labels_csv=tmp_path / "labels.csv", subject_column="subject",
                          subject_pattern="x")
    with pytest.raises(ValueError, match=r"cn/b.nii.gz: subject_pattern 'a' does not match"):
        read_nifti_folder(root, subject_pattern="a")
    by_pattern = read_nifti_folder(root, subject_pattern=r"cn/")  # whole match: both in one subject
    assert by_pattern.group_key == "subject_pattern" and len(set(by_pattern.groups)) == 1


def test_image_folder_subject_pattern(tmp_path):
    root = tmp_path / "images"
    rng = np.random.default_rng(0)
    subject_of = {}
    for subject in range(12):
        label = "a" if subject % 2 else "b"
        for view in range(3):
            relative = f"{label}/case{subject:02d}_view{view}.png"
            (root / label).mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (4, 4), dtype=np.uint8)).save(root / relative)
            subject_of[relative] = subject
    before = _checksums(root)
    options = {"path": str(root), "channels": 1, "subject_pattern": r"case(\d+)_"}
    for seed in SEEDS:
        prepare_splits("image_folder", options, seed=seed, manifest_path=tmp_path / "m.json")
        manifest = load_split_manifest(tmp_path / "m.json")
        where = {}
        for split in SPLIT_NAMES:
            for index in manifest.indices(split):
                where.setdefault(subject_of[manifest.item_ids[index]], set()).add(split)
        assert len(where) == 12 and all(len(s) == 1 for s in where.values())
        assert manifest.group_key == "subject_pattern"
        assert manifest.group_counts == {"train": 8, "val": 2, "test": 2}
    assert _checksums(root) == before
    assert read_image_folder(root, channels=1).groups is None
    with pytest.raises(ValueError, match=r"subject_pattern '\(' is not a valid regular expression"):
        read_image_folder(root, channels=1, subject_pattern="(")


def test_source_summary_counts_patients_without_naming_them(tmp_path):
    from medsyn.data.source_summary import summarize_source

    root = tmp_path / "study"
    _twelve_patients(root)
    summary = summarize_source("dicom_folder", path=str(root / "scans"), labels_csv=str(root / "labels.csv"),
                               size=8)
    assert (summary["groups"], summary["group_key"], summary["group_fallbacks"]) == (12, "PatientID", {})
    assert "PID-" not in json.dumps(summary)


def test_one_patient_per_class_leaves_val_and_test_empty_and_says_why(tmp_path):
    # every file of a class carries the same PatientID (a folder anonymised to one ID, or one patient)
    for label, patient in (("a", "ANON"), ("b", "ANON2")):
        for index in range(5):
            _ct(tmp_path / "d" / label / f"{index}.dcm", patient=patient, marker=index + 10 * (label == "b"))
    with pytest.warns(UserWarning, match=r"split\(s\) \['val', 'test'\] are empty.*PatientID groups per split "
                                         r"\{'train': 2, 'val': 0, 'test': 0\}"):
        splits = prepare_splits("dicom_folder", {"path": str(tmp_path / "d"), "size": 8}, seed=0)
    assert len(splits["train"]) == 10
    by_file = prepare_splits("dicom_folder", {"path": str(tmp_path / "d"), "size": 8, "group_by": "file"},
                             seed=0)
    assert [len(by_file[name]) for name in SPLIT_NAMES] == [6, 2, 2]
