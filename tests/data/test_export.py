import numpy as np
import pydicom
import pytest
import torch
from pydicom.data import get_testdata_file

from medsyn.data.export import export_dicom, export_nifti, export_png
from medsyn.data.sources import load_source

pytestmark = [
    pytest.mark.filterwarnings("ignore:.*nvImageCodec.*"),
    pytest.mark.filterwarnings("ignore:.*ImageOrientationPatient.*"),
]


PLANTED = {
    "PatientName": "Plantedname^Patricia",
    "PatientID": "PID-PLANTED-4711",
    "PatientBirthDate": "19010203",
    "InstitutionName": "St Planted Memorial Hospital",
    "AccessionNumber": "ACC-PLANTED-0099",
    "ReferringPhysicianName": "Referrer^Planted^Doctor",
    "StudyDate": "19990909",
    "OperatorsName": "Operator^Planted",
    "StudyInstanceUID": "1.2.826.0.1.999999.17.1",
    "SeriesInstanceUID": "1.2.826.0.1.999999.17.2",
    "SOPInstanceUID": "1.2.826.0.1.999999.17.3",
    "FrameOfReferenceUID": "1.2.826.0.1.999999.17.4",
}
PRIVATE_CREATOR, PRIVATE_VALUE = "PLANTED PRIVATE CREATOR", "PLANTED-PRIVATE-SECRET-42"


@pytest.fixture
def planted_reference(tmp_path):
    """A CT with identifiers, dates, UIDs and a private tag planted in it."""
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm", download=False))
    for keyword, value in PLANTED.items():
        setattr(ds, keyword, value)
    ds.file_meta.MediaStorageSOPInstanceUID = PLANTED["SOPInstanceUID"]
    ds.ImageComments = "free text: patient said PLANTED-COMMENT"
    block = ds.private_block(0x0011, PRIVATE_CREATOR, create=True)
    block.add_new(0x01, "LO", PRIVATE_VALUE)
    path = tmp_path / "reference" / "ref.dcm"
    path.parent.mkdir()
    ds.save_as(path)
    return path


def _needles():
    needles = list(PLANTED.values()) + [PRIVATE_CREATOR, PRIVATE_VALUE, "PLANTED-COMMENT"]
    # DICOM person names are stored as written; also look for each component on its own
    needles += [part for value in PLANTED.values() if "^" in value for part in value.split("^")]
    return [needle.encode() for needle in needles] + [b"Planted", b"PLANTED", b"1.2.826.0.1.999999"]


def test_planted_identifiers_never_exported(planted_reference, tmp_path):
    from monai.transforms import LoadImage

    reference_bytes = planted_reference.read_bytes()
    assert all(needle in reference_bytes for needle in (b"PID-PLANTED-4711", PRIVATE_VALUE.encode()))
    images = torch.rand(4, 1, 24, 24, generator=torch.Generator().manual_seed(0))
    paths = export_dicom(images, torch.tensor([0, 1, 1, 0]), tmp_path / "out", reference=planted_reference,
                         generator="ddpm-tiny", class_names=["healthy", "lesion"])
    assert len(paths) == 4
    sop_uids = set()
    for path in paths:
        data = path.read_bytes()
        for needle in _needles():
            assert needle not in data, f"{needle!r} leaked into {path.name}"
        ds = pydicom.dcmread(path)
        for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
            assert str(ds[keyword].value) not in PLANTED.values()
        assert "FrameOfReferenceUID" not in ds
        assert not any(element.tag.is_private for element in ds)
        assert list(ds.ImageType) == ["DERIVED", "SECONDARY"] and ds.BurnedInAnnotation == "NO"
        assert ds.ConversionType == "SYN"
        assert "ddpm-tiny" in ds.ImageComments and "SYNTHETIC" in ds.ImageComments
        assert ds.Modality == "CT"  # image description may be copied
        sop_uids.add(ds.SOPInstanceUID)
        loaded = LoadImage(image_only=True)(str(path))
        assert tuple(loaded.shape)[-2:] == (24, 24)
    assert len(sop_uids) == 4
    assert planted_reference.read_bytes() == reference_bytes  # the reference is never modified


def test_dicom_pixels_and_labels_round_trip(tmp_path):
    images = torch.rand(6, 1, 16, 12, generator=torch.Generator().manual_seed(1))
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    out = tmp_path / "dcm"
    paths = export_dicom(images, labels, out, generator="cvae", class_names=["a", "b", "c"])
    stored = pydicom.dcmread(paths[1]).pixel_array
    np.testing.assert_array_equal(stored, np.round(images[1, 0].numpy().astype(np.float64) * 65535))
    back = load_source("dicom_folder", path=str(out), labels_csv=str(out / "labels.csv"))
    assert back.class_names == ("a", "b", "c") and back.labels.tolist() == labels.tolist()
    torch.testing.assert_close(back.images, images, atol=1e-4, rtol=0)


def test_rgb_and_eight_bit_and_monochrome1_reference(tmp_path):
    rgb = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    ds = pydicom.dcmread(export_dicom(rgb, [0, 0], tmp_path / "rgb")[0])
    assert ds.PhotometricInterpretation == "RGB" and ds.BitsStored == 8
    np.testing.assert_array_equal(ds.pixel_array, np.round(rgb[0].permute(1, 2, 0).double().numpy() * 255))
    reference = pydicom.dcmread(get_testdata_file("MR_small.dcm", download=False))
    reference.PhotometricInterpretation = "MONOCHROME1"
    grey = torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    path = export_dicom(grey, [0], tmp_path / "m1", reference=reference)[0]
    written = pydicom.dcmread(path)
    assert written.PhotometricInterpretation == "MONOCHROME1" and written.BitsStored == 16
    # stored inverted, and a reader that honours MONOCHROME1 gets the original image back
    m1 = tmp_path / "m1"
    back = load_source("dicom_folder", path=str(m1), labels_csv=str(m1 / "labels.csv"))
    torch.testing.assert_close(back.images, grey, atol=1e-4, rtol=0)
    eight = pydicom.dcmread(export_dicom(grey, [0], tmp_path / "eight", bits=8)[0])
    assert eight.BitsAllocated == 8 and eight.pixel_array.dtype == np.uint8


def test_png_round_trip_through_image_folder(tmp_path):
    images = torch.rand(4, 1, 10, 10, generator=torch.Generator().manual_seed(4))
    export_png(images, [1, 0, 1, 0], tmp_path / "png", class_names=["neg", "pos"])
    back = load_source("image_folder", path=str(tmp_path / "png"), channels=1)
    assert back.class_names == ("neg", "pos") and back.class_counts() == [2, 2]
    torch.testing.assert_close(back.images[0], images[1], atol=0.5 / 255 + 1e-6, rtol=0)  # first "neg" image
    export_png(images, [1, 0, 1, 0], tmp_path / "png16", class_names=["neg", "pos"], bits=16)
    back16 = load_source("image_folder", path=str(tmp_path / "png16"), channels=1)
    torch.testing.assert_close(back16.images[0], images[1], atol=0.5 / 65535 + 1e-6, rtol=0)


def test_nifti_round_trip_through_nifti_folder(tmp_path):
    import nibabel as nib

    images = torch.rand(3, 1, 9, 7, generator=torch.Generator().manual_seed(5))
    paths = export_nifti(images, [0, 1, 0], tmp_path / "nii", class_names=["x", "y"], generator="ldm")
    assert b"synthetic ldm" in nib.load(paths[0]).header["descrip"].tobytes()
    nii = tmp_path / "nii"
    back = load_source("nifti_folder", path=str(nii), labels_csv=str(nii / "labels.csv"), window=[0.0, 1.0])
    assert back.labels.tolist() == [0, 1, 0]
    torch.testing.assert_close(back.images, images, atol=1e-6, rtol=0)


@pytest.mark.parametrize(
    "images, labels, match",
    [
        (torch.rand(2, 2, 4, 4), [0, 0], "images"),
        (torch.rand(2, 1, 4, 4) * 2, [0, 0], r"\[0, 1\]"),
        (torch.full((2, 1, 4, 4), float("nan")), [0, 0], "finite"),
        (torch.rand(2, 1, 4, 4), [0], "labels"),
        (torch.rand(2, 1, 4, 4), [0, 5], "labels"),
    ],
)
def test_export_rejects_bad_input(tmp_path, images, labels, match):
    with pytest.raises(ValueError, match=match):
        export_dicom(images, labels, tmp_path / "x", class_names=["a", "b"])
    assert not (tmp_path / "x").exists()


def test_export_refuses_to_write_next_to_the_reference(planted_reference):
    # the reference's folder holds a file medsyn did not write: refused as a foreign folder
    with pytest.raises(FileExistsError, match=r"not empty and medsyn did not write it \(found ref.dcm\)"):
        export_dicom(torch.rand(1, 1, 4, 4), [0], planted_reference.parent, reference=planted_reference)
    assert sorted(p.name for p in planted_reference.parent.iterdir()) == ["ref.dcm"]
    # a synthetic file of an earlier export into the same folder is no reference to write beside either
    out = planted_reference.parent.parent / "exported"
    first = export_dicom(torch.rand(1, 1, 4, 4), [0], out)[0]
    with pytest.raises(ValueError, match="reference's folder"):
        export_dicom(torch.rand(1, 1, 4, 4), [0], out, reference=first)


def test_png_export_reads_back_as_an_external_labelled_folder(tmp_path):
    from medsyn.data.labelled_folder import load_labelled_folder

    images = torch.rand(3, 1, 6, 6, generator=torch.Generator().manual_seed(6))
    export_png(images, [0, 1, 0], tmp_path / "png", class_names=["neg", "pos"])
    back = load_labelled_folder(tmp_path / "png", tmp_path / "png" / "labels.csv", class_names=["neg", "pos"],
                                image_shape=(1, 6, 6))
    assert back.labels.tolist() == [0, 1, 0]
    torch.testing.assert_close(back.images, images, atol=0.5 / 255 + 1e-6, rtol=0)
