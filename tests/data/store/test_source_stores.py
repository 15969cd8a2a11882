"""store=True for DICOM, NIfTI, MedMNIST and CheXpert: the in-memory set, decoded once, rebuilt on a change,
and no identifier of the source in the store's files."""

from __future__ import annotations

import os
import shutil
import typing
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
import torch
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from medsyn.config.data import parse_data_options
from medsyn.config.strict import ConfigError
from medsyn.data import chexpert as chexpert_module
from medsyn.data import dicom_pixels, source_store
from medsyn.data import medmnist as medmnist_module
from medsyn.data import nifti_folder as nifti_module
from medsyn.data.chexpert import CHEXPERT_FINDINGS, read_chexpert
from medsyn.data.dicom_folder import read_dicom_folder
from medsyn.data.medmnist import read_medmnist_npz
from medsyn.data.nifti_folder import read_nifti_folder
from medsyn.data.sources import draw_splits
from medsyn.data.store.storage_dtype import DTYPE_REQUESTS
from medsyn.data.stored_images import image_tensor

pytestmark = [
    pytest.mark.filterwarnings("ignore:.*nvImageCodec.*"),
    pytest.mark.filterwarnings("ignore:.*mixes [0-9] modalities.*"),
    pytest.mark.filterwarnings("ignore:.*frames of [0-9] sizes.*"),
    pytest.mark.filterwarnings("ignore:.*grouped by a fallback.*"),
]

NIBABEL_DATA = Path(nib.__file__).parent / "tests" / "data"


def _same(memory, stored):
    """The stored SourceData is the in-memory one: pixels bit for bit, labels, classes, ids, groups."""
    memory_sets = memory.sets if isinstance(memory.sets, dict) else {"all": memory.sets}
    stored_sets = stored.sets if isinstance(stored.sets, dict) else {"all": stored.sets}
    assert memory_sets.keys() == stored_sets.keys()
    for name, memory_set in memory_sets.items():
        assert stored_sets[name].stored and not memory_set.stored
        assert torch.equal(memory_set.images, image_tensor(stored_sets[name].images)), name
        assert torch.equal(memory_set.labels, stored_sets[name].labels)
        assert memory_set.class_names == stored_sets[name].class_names
        assert memory_set.source == stored_sets[name].source
    assert memory.item_ids == stored.item_ids and memory.groups == stored.groups
    assert memory.group_key == stored.group_key and memory.group_fallbacks == stored.group_fallbacks
    assert memory.skipped == stored.skipped == []


def _store_bytes(cache: Path) -> list[tuple[str, bytes]]:
    return [(path.name, path.read_bytes() if path.is_file() else b"") for path in cache.rglob("*")]


def _assert_nothing_named(cache: Path, secrets: list[str]) -> None:
    entries = _store_bytes(cache)
    assert any(name == "manifest.json" for name, _ in entries)
    for name, data in entries:
        for secret in secrets:
            assert secret not in name and secret.encode() not in data, (secret, name)


def _touch_later(path: Path) -> None:
    later = path.stat().st_mtime_ns + 10**9
    os.utime(path, ns=(later, later))


class _Counter:
    """Wraps ``module.name`` and counts its calls."""

    def __init__(self, monkeypatch, module, name):
        self.calls = 0
        real = getattr(module, name)

        def counted(*args, **kwargs):
            self.calls += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(module, name, counted)


def test_store_dtype_type_is_the_store_rule():
    assert typing.get_args(source_store.StoreDtype) == DTYPE_REQUESTS


# --- DICOM ---------------------------------------------------------------------------------------------------


def _bundled_dicom(name):
    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"{name} is not bundled with this pydicom")
    return path


def _dicom_copies(out_dir: Path, name: str, patients: list[str]) -> list[Path]:
    """One copy of a bundled file per PatientID (new UIDs, a pixel marker so each differs)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    ds = pydicom.dcmread(_bundled_dicom(name))
    paths = []
    for index, patient in enumerate(patients):
        ds.PatientID = patient
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        pixels = ds.pixel_array.astype(np.int16)
        pixels[:4, :4] = index * 10
        ds.PixelData = pixels.tobytes()
        path = out_dir / f"{name[:-4]}_{index:02d}.dcm"
        ds.save_as(path)
        paths.append(path)
    return paths


@pytest.fixture
def dicom_folder(tmp_path):
    root = tmp_path / "dicom"
    _dicom_copies(root / "ct", "CT_small.dcm", ["SECRETPID01", "SECRETPID02", "SECRETPID01"])
    _dicom_copies(root / "mr", "MR_small.dcm", ["SECRETPID03", "SECRETPID04", ""])  # "": grouped by study
    shutil.copy(_bundled_dicom("rtdose.dcm"), root / "mr" / "dose.dcm")  # 15 frames
    return root


@pytest.mark.parametrize("options", [
    {"size": 24, "allow_mixed_modalities": True},
    {"size": 24, "frames": "middle", "window": [40, 400], "allow_mixed_modalities": True},
    {"size": 64, "group_by": "StudyInstanceUID", "allow_mixed_modalities": True, "store_dtype": "float32"},
])
def test_dicom_store_is_the_in_memory_set_and_is_reused(dicom_folder, tmp_path, monkeypatch, options):
    cache = tmp_path / "cache"
    memory = read_dicom_folder(dicom_folder, **options)
    stored = read_dicom_folder(dicom_folder, **options, store=True, cache_dir=cache)
    _same(memory, stored)
    assert any(item.endswith("#frame3") for item in stored.item_ids) == (options.get("frames") != "middle")
    assert stored.group_fallbacks == ({} if "group_by" in options else {"StudyInstanceUID": 1})
    decodes = _Counter(monkeypatch, dicom_pixels, "dicom_frames")
    _same(memory, read_dicom_folder(dicom_folder, **options, store=True, cache_dir=cache))
    assert decodes.calls == 0
    _assert_nothing_named(cache, ["SECRETPID", "CT_small", "MR_small", "dose", str(dicom_folder)])


def test_dicom_store_of_a_labels_csv_at_native_size(tmp_path):
    root = tmp_path / "study"
    paths = _dicom_copies(root, "CT_small.dcm", ["SECRETPID01", "SECRETPID02", "SECRETPID03"])
    labels_csv = tmp_path / "labels.csv"
    labels_csv.write_text("path,label\n" + "".join(f"{p.name},{'ab'[i % 2]}\n" for i, p in enumerate(paths)))
    options = {"labels_csv": labels_csv, "size": None}
    memory = read_dicom_folder(root, **options)
    stored = read_dicom_folder(root, **options, store=True, cache_dir=tmp_path / "cache")
    _same(memory, stored)
    assert stored.sets.image_shape == (1, 128, 128)
    _assert_nothing_named(tmp_path / "cache", ["SECRETPID", "CT_small", "labels.csv"])


def test_dicom_store_rebuilds_when_a_file_changes_is_added_or_removed(dicom_folder, tmp_path, monkeypatch):
    cache, options = tmp_path / "cache", {"size": 16, "allow_mixed_modalities": True}
    read_dicom_folder(dicom_folder, **options, store=True, cache_dir=cache)
    changed = dicom_folder / "ct" / "CT_small_00.dcm"
    ds = pydicom.dcmread(changed)
    pixels = ds.pixel_array.copy()
    pixels[10:20, 10:20] = 2000
    ds.PixelData = pixels.tobytes()
    ds.save_as(changed)
    _touch_later(changed)
    decodes = _Counter(monkeypatch, dicom_pixels, "dicom_frames")
    _same(read_dicom_folder(dicom_folder, **options), read_dicom_folder(dicom_folder, **options, store=True,
                                                                        cache_dir=cache))
    assert decodes.calls == 2 * 7  # rebuilt (every file once), and the in-memory read
    _dicom_copies(dicom_folder / "ct" / "more", "CT_small.dcm", ["SECRETPID09"])
    (dicom_folder / "mr" / "MR_small_01.dcm").unlink()
    _same(read_dicom_folder(dicom_folder, **options), read_dicom_folder(dicom_folder, **options, store=True,
                                                                        cache_dir=cache))


def test_dicom_store_refuses_bad_options_and_duplicates(dicom_folder, tmp_path):
    cache = tmp_path / "cache"
    with pytest.raises(ValueError, match="store_dtype must be one of"):
        read_dicom_folder(dicom_folder, store=True, store_dtype="int8", cache_dir=cache)
    with pytest.raises(ValueError, match="store must be true or false"):
        read_dicom_folder(dicom_folder, store="yes", cache_dir=cache)
    with pytest.raises(ValueError, match=r"on_error='skip' cannot be used with store: true"):
        read_dicom_folder(dicom_folder, store=True, on_error="skip", cache_dir=cache)
    with pytest.raises(ValueError, match="frames must be one of"):
        read_dicom_folder(dicom_folder, store=True, frames="first", cache_dir=cache)
    shutil.copy(dicom_folder / "ct" / "CT_small_00.dcm", dicom_folder / "ct" / "copy.dcm")
    with pytest.raises(ValueError, match=r"copy\.dcm: SOPInstanceUID .* is also in .*CT_small_00\.dcm"):
        read_dicom_folder(dicom_folder, size=16, store=True, allow_mixed_modalities=True, cache_dir=cache)


def test_dicom_store_gives_the_in_memory_patient_split(tmp_path):
    root = tmp_path / "dicom"
    _dicom_copies(root / "ct", "CT_small.dcm", [f"SECRETPID{index // 2}" for index in range(12)])
    _dicom_copies(root / "mr", "MR_small.dcm", [f"SECRETPID{index // 2 + 6}" for index in range(12)])
    options = {"path": str(root), "size": 16, "allow_mixed_modalities": True}
    memory, memory_manifest = draw_splits("dicom_folder", options, seed=1)
    stored, stored_manifest = draw_splits("dicom_folder", {**options, "store": True,
                                                            "cache_dir": str(tmp_path / "cache")}, seed=1)
    for name in ("train", "val", "test"):
        assert len(memory[name]) > 0 and stored[name].stored
        assert torch.equal(memory[name].images, image_tensor(stored[name].images))
    assert memory_manifest.to_json() == stored_manifest.to_json()


# --- NIfTI ---------------------------------------------------------------------------------------------------


def _bundled_nifti(name):
    path = NIBABEL_DATA / name
    if not path.is_file():
        pytest.skip(f"{name} is not bundled with this nibabel")
    return path


@pytest.fixture
def nifti_folder(tmp_path):
    root = tmp_path / "nifti"
    (root / "brain").mkdir(parents=True)
    (root / "other").mkdir()
    shutil.copy(_bundled_nifti("anatomical.nii"), root / "brain" / "subjSECRET1_anat.nii")  # (33, 41, 25)
    shutil.copy(_bundled_nifti("reoriented_anat_moved.nii"), root / "brain" / "subjSECRET1_moved.nii")
    shutil.copy(_bundled_nifti("example_nifti2.nii.gz"), root / "other" / "subjSECRET2_n2.nii.gz")
    return root


@pytest.mark.parametrize("options", [
    {"size": 20, "subject_pattern": r"subj[A-Z]+\d"},
    {"size": 16, "axis": 0, "slices": "middle", "window": [0, 300]},
    {"size": 16, "axis": 1, "slices": [1, 5], "percentiles": [2, 98], "store_dtype": "uint16"},
])
def test_nifti_store_is_the_in_memory_set_and_is_reused(nifti_folder, tmp_path, monkeypatch, options):
    cache = tmp_path / "cache"
    memory = read_nifti_folder(nifti_folder, **options)
    stored = read_nifti_folder(nifti_folder, **options, store=True, cache_dir=cache)
    if options.get("store_dtype") == "uint16":  # asked for rounding: within half a 16-bit step
        assert stored.sets.images.shape == memory.sets.images.shape
        assert (image_tensor(stored.sets.images) - memory.sets.images).abs().max() <= 0.5 / 65535 + 1e-7
        assert stored.item_ids == memory.item_ids and stored.groups == memory.groups
    else:
        _same(memory, stored)
    decodes = _Counter(monkeypatch, nifti_module, "_read_volume")
    again = read_nifti_folder(nifti_folder, **options, store=True, cache_dir=cache)
    assert decodes.calls == 0 and again.item_ids == stored.item_ids
    assert torch.equal(image_tensor(again.sets.images), image_tensor(stored.sets.images))
    _assert_nothing_named(cache, ["SECRET", "anat", "moved", str(nifti_folder)])


def test_nifti_store_at_native_size_and_with_a_subject_column(tmp_path):
    root = tmp_path / "nifti"
    root.mkdir()
    shutil.copy(_bundled_nifti("anatomical.nii"), root / "a.nii")
    shutil.copy(_bundled_nifti("anatomical.nii"), root / "b.nii")
    (root / "b.nii").write_bytes((root / "b.nii").read_bytes()[:-4] + b"\x00\x00\x00\x00")  # differs
    labels_csv = tmp_path / "labels.csv"
    labels_csv.write_text("path,label,subject\na.nii,x,Jane_Doe_SECRET\nb.nii,y,Jane_Doe_SECRET\n")
    options = {"labels_csv": labels_csv, "subject_column": "subject", "slices": [3, 10]}
    memory = read_nifti_folder(root, **options)
    stored = read_nifti_folder(root, **options, store=True, cache_dir=tmp_path / "cache")
    _same(memory, stored)
    assert stored.sets.image_shape == (1, 41, 33) and len(set(stored.groups)) == 1
    _assert_nothing_named(tmp_path / "cache", ["Jane", "SECRET", "labels.csv"])


def test_nifti_store_rebuilds_on_a_changed_file_and_refuses_bad_options(nifti_folder, tmp_path, monkeypatch):
    cache, options = tmp_path / "cache", {"size": 12, "slices": "middle"}
    read_nifti_folder(nifti_folder, **options, store=True, cache_dir=cache)
    changed = nifti_folder / "brain" / "subjSECRET1_anat.nii"
    image = nib.load(changed)
    nib.save(nib.Nifti1Image(np.asarray(image.get_fdata())[::-1].copy(), image.affine), changed)
    _touch_later(changed)
    decodes = _Counter(monkeypatch, nifti_module, "_read_volume")
    _same(read_nifti_folder(nifti_folder, **options),
          read_nifti_folder(nifti_folder, **options, store=True, cache_dir=cache))
    assert decodes.calls == 2 * 3  # the in-memory read, and the rebuild
    with pytest.raises(ValueError, match="drop_constant_slices: true cannot be used with store: true"):
        read_nifti_folder(nifti_folder, store=True, drop_constant_slices=True, cache_dir=cache)
    with pytest.raises(ValueError, match="store_dtype must be one of"):
        read_nifti_folder(nifti_folder, store=True, store_dtype="uint4", cache_dir=cache)
    with pytest.raises(ValueError, match=r"anat\.nii: slice indices \[99\] outside"):
        read_nifti_folder(nifti_folder, store=True, slices=[99], cache_dir=cache)
    (nifti_folder / "brain" / "broken.nii").write_bytes(b"not a nifti file at all" * 40)
    with pytest.raises(ValueError, match=r"broken\.nii: not a readable NIfTI file"):
        read_nifti_folder(nifti_folder, store=True, cache_dir=cache)


# --- MedMNIST ------------------------------------------------------------------------------------------------


def _write_npz(path, *, rgb=False, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, count in zip(("train", "val", "test"), (12, 5, 5)):
        shape = (count, 28, 28, 3) if rgb else (count, 28, 28)
        arrays[f"{split}_images"] = rng.integers(0, 256, size=shape, dtype=np.uint8)
        arrays[f"{split}_labels"] = (np.arange(count) % 3).reshape(count, 1).astype(np.uint8)
    np.savez(path, **arrays)


@pytest.mark.parametrize(("rgb", "options"), [
    (False, {}), (True, {"size": 20, "channels": 1}), (False, {"size": 40, "channels": 3}),
    (True, {"size": 16, "class_names": ["a", "b", "c"], "store_dtype": "float32"}),
])
def test_medmnist_store_is_the_in_memory_set_and_is_reused(tmp_path, monkeypatch, rgb, options):
    path, cache = tmp_path / "toymnist.npz", tmp_path / "cache"
    _write_npz(path, rgb=rgb)
    memory = read_medmnist_npz(path, **options)
    stored = read_medmnist_npz(path, **options, store=True, cache_dir=cache)
    _same(memory, stored)
    decodes = _Counter(monkeypatch, medmnist_module, "_unit_images")
    _same(memory, read_medmnist_npz(path, **options, store=True, cache_dir=cache))
    assert decodes.calls == 0
    _assert_nothing_named(cache, ["toymnist", str(tmp_path)])


def test_medmnist_store_rebuilds_on_a_changed_file_and_splits_as_in_memory(tmp_path, monkeypatch):
    path, cache = tmp_path / "toy.npz", tmp_path / "cache"
    _write_npz(path)
    read_medmnist_npz(path, size=14, store=True, cache_dir=cache)
    _write_npz(path, seed=5)
    _touch_later(path)
    decodes = _Counter(monkeypatch, medmnist_module, "_unit_images")
    _same(read_medmnist_npz(path, size=14), read_medmnist_npz(path, size=14, store=True, cache_dir=cache))
    assert decodes.calls == 3 + 22  # the in-memory read (a split a call), and the rebuild (an image a call)
    options = {"path": str(path), "size": 14}
    memory, memory_manifest = draw_splits("medmnist", options, seed=2, per_class=2)
    stored, stored_manifest = draw_splits("medmnist", {**options, "store": True, "cache_dir": str(cache)},
                                          seed=2, per_class=2)
    for name in ("train", "val", "test"):
        assert stored[name].stored and torch.equal(memory[name].images, image_tensor(stored[name].images))
        assert torch.equal(memory[name].labels, stored[name].labels)
    assert memory_manifest.to_json() == stored_manifest.to_json()
    with pytest.raises(ValueError, match="store_dtype must be one of"):
        read_medmnist_npz(path, store=True, store_dtype="float64", cache_dir=cache)
    np.savez(tmp_path / "multi.npz", **{f"{s}_images": np.zeros((2, 4, 4), np.uint8) for s in ("train", "val", "test")},
             **{f"{s}_labels": np.zeros((2, 14), np.uint8) for s in ("train", "val", "test")})
    with pytest.raises(ValueError, match="multi-label MedMNIST sets are not supported"):
        read_medmnist_npz(tmp_path / "multi.npz", store=True, cache_dir=cache)


# --- CheXpert ------------------------------------------------------------------------------------------------

_HEADER = ["Path", "Sex", "Age", "Frontal/Lateral", "AP/PA", *CHEXPERT_FINDINGS]


def _chexpert(tmp_path: Path, patients: int = 6) -> Path:
    root = tmp_path / "CheXpert-v1.0-small"
    rng = np.random.default_rng(0)
    lines = [",".join(_HEADER)]
    for index in range(patients * 2):
        relative = f"CheXpert-v1.0-small/train/patient{index // 2 + 1:05d}/study{index % 2 + 1}/view1_frontal.jpg"
        findings = [""] * len(CHEXPERT_FINDINGS)
        findings[index % 3 + 1] = "1.0"
        lines.append(",".join([relative, "Female", "60", "Frontal", "AP", *findings]))
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, size=(39, 32), dtype=np.uint8), mode="L").save(tmp_path / relative)
    (root / "train.csv").write_text("\n".join(lines) + "\n")
    return root / "train.csv"


@pytest.mark.parametrize("options", [{"size": 16}, {"size": None}, {"size": 48, "limit": 7}])
def test_chexpert_store_is_the_in_memory_set_and_is_reused(tmp_path, monkeypatch, options):
    csv_path, cache = _chexpert(tmp_path), tmp_path / "cache"
    memory = read_chexpert(csv_path, **options)
    stored = read_chexpert(csv_path, **options, store=True, cache_dir=cache)
    _same(memory, stored)
    assert stored.groups[0] == "patient00001"  # the patient id stays in memory...
    decodes = _Counter(monkeypatch, chexpert_module, "decode_image_bytes")
    _same(memory, read_chexpert(csv_path, **options, store=True, cache_dir=cache))
    assert decodes.calls == 0
    _assert_nothing_named(cache, ["patient", "study", "view1", "CheXpert"])  # ...and out of the store


def test_chexpert_store_rebuilds_on_changes_and_refuses_bad_options(tmp_path, monkeypatch):
    csv_path, cache = _chexpert(tmp_path), tmp_path / "cache"
    read_chexpert(csv_path, size=16, store=True, cache_dir=cache)
    changed = tmp_path / "CheXpert-v1.0-small/train/patient00002/study1/view1_frontal.jpg"
    Image.fromarray(np.full((39, 32), 200, np.uint8), mode="L").save(changed)
    _touch_later(changed)
    decodes = _Counter(monkeypatch, chexpert_module, "decode_image_bytes")
    _same(read_chexpert(csv_path, size=16), read_chexpert(csv_path, size=16, store=True, cache_dir=cache))
    assert decodes.calls == 2 * 12
    changed.unlink()
    with pytest.raises(FileNotFoundError, match=r"patient00002.*listed in .*train\.csv but not found"):
        read_chexpert(csv_path, size=16, store=True, cache_dir=cache)
    with pytest.raises(ValueError, match=r"on_error='skip' cannot be used with store: true"):
        read_chexpert(csv_path, store=True, on_error="skip", cache_dir=cache)
    with pytest.raises(ValueError, match="store_dtype must be one of"):
        read_chexpert(csv_path, store=True, store_dtype="auto8", cache_dir=cache)


# --- config ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["dicom_folder", "nifti_folder", "medmnist", "chexpert", "image_folder"])
def test_config_takes_the_store_options_and_names_a_bad_value(kind):
    checked = parse_data_options(kind, {"path": "x", "store": "true", "cache_dir": "/tmp/c",
                                        "store_dtype": "uint16"}, path="data.options")
    assert checked["store"] is True and checked["store_dtype"] == "uint16"
    with pytest.raises(ConfigError, match=r"data\.options\.store: expected true or false"):
        parse_data_options(kind, {"path": "x", "store": "yes"}, path="data.options")
    if kind != "image_folder":  # image_folder checks its store_dtype when it reads
        with pytest.raises(ConfigError, match=r"data\.options\.store_dtype: expected one of"):
            parse_data_options(kind, {"path": "x", "store_dtype": "int8"}, path="data.options")
