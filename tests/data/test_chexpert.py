import numpy as np
import pytest
from PIL import Image

from medsyn.data.chexpert import CHEXPERT_FINDINGS, read_chexpert, select_chexpert_rows
from medsyn.data.sources import load_source, prepare_splits

HEADER = ["Path", "Sex", "Age", "Frontal/Lateral", "AP/PA", *CHEXPERT_FINDINGS]


def _row(path, view="Frontal", ap="AP", **findings):
    values = dict.fromkeys(CHEXPERT_FINDINGS, "")
    values.update({name.replace("_", " "): str(value) for name, value in findings.items()})
    return [path, "Female", "60", view, ap] + [values[name] for name in CHEXPERT_FINDINGS]


def _write(tmp_path, rows, images=True):
    root = tmp_path / "CheXpert-v1.0-small"
    root.mkdir(exist_ok=True)
    lines = [",".join(HEADER)] + [",".join(row) for row in rows]
    (root / "train.csv").write_text("\n".join(lines) + "\n")
    if images:
        rng = np.random.default_rng(0)
        for row in rows:
            path = tmp_path / row[0]
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, size=(39, 32), dtype=np.uint8), mode="L").save(path)
    return root / "train.csv"


def _path(patient, study=1):
    return f"CheXpert-v1.0-small/train/patient{patient:05d}/study{study}/view1_frontal.jpg"


def test_filter_frontal_ap_exactly_one_finding_with_u_ones(tmp_path):
    csv_path = _write(tmp_path, [
        _row(_path(1), Cardiomegaly="1.0"),                              # kept: Cardiomegaly
        _row(_path(2), Edema="-1.0"),                                    # kept: uncertain counts (U-Ones)
        _row(_path(3), Edema="1.0", Pneumonia="-1.0"),                   # dropped: two positives after U-Ones
        _row(_path(4), ap="PA", Cardiomegaly="1.0"),                     # dropped: PA
        _row(_path(5), view="Lateral", ap="", Cardiomegaly="1.0"),       # dropped: lateral
        _row(_path(6), Fracture="0.0"),                                  # dropped: no positive finding
        _row(_path(7), No_Finding="1.0", Edema="0.0"),         # kept: No Finding
    ], images=False)
    kept = select_chexpert_rows(csv_path)
    assert kept == [
        (_path(1), CHEXPERT_FINDINGS.index("Cardiomegaly")),
        (_path(2), CHEXPERT_FINDINGS.index("Edema")),
        (_path(7), CHEXPERT_FINDINGS.index("No Finding")),
    ]


def test_reads_images_resized_to_256_with_14_classes(tmp_path):
    csv_path = _write(tmp_path, [_row(_path(1), Cardiomegaly="1.0"), _row(_path(2), Edema="1")])
    images = load_source("chexpert", path=str(csv_path))
    assert images.images.shape == (2, 1, 256, 256)
    assert images.class_names == CHEXPERT_FINDINGS and len(CHEXPERT_FINDINGS) == 14
    assert images.labels.tolist() == [2, 5]


def test_patients_stay_in_one_split(tmp_path):
    rows = []
    for patient in range(12):
        for study in (1, 2):
            rows.append(_row(_path(patient, study), Cardiomegaly="1.0") if patient % 2
                        else _row(_path(patient, study), Edema="1.0"))
    csv_path = _write(tmp_path, rows)
    data = read_chexpert(csv_path, size=16)
    assert data.groups[:2] == ["patient00000", "patient00000"]
    splits = prepare_splits("chexpert", {"path": str(csv_path), "size": 16}, seed=0,
                            manifest_path=tmp_path / "m.json")
    assert sum(len(part) for part in splits.values()) == 24
    import json
    manifest = json.loads((tmp_path / "m.json").read_text())
    for patient in range(12):
        holding = {name for name in ("train", "val", "test")
                   if any(f"patient{patient:05d}" in manifest["item_ids"][i] for i in manifest[name])}
        assert len(holding) == 1


def test_bad_csv(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        read_chexpert(tmp_path / "nope.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("Path,Sex\nx.jpg,F\n")
    with pytest.raises(ValueError, match=r"bad.csv: missing column\(s\) \['Frontal/Lateral'"):
        read_chexpert(bad)
    csv_path = _write(tmp_path, [_row(_path(1), Cardiomegaly="maybe")], images=False)
    with pytest.raises(ValueError, match=r"train.csv:row 1: finding value 'maybe'"):
        read_chexpert(csv_path)
