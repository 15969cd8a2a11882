"""Write synthetic images to disk as DICOM, PNG or NIfTI, each with a labels CSV medsyn can read back.

    export_dicom(images, labels, "out/dicom", reference=real_file, generator="ddpm", class_names=names)
    export_png(images, labels, "out/png", class_names=names)      # out/png/<class>/synthetic_000000.png
    export_nifti(images, labels, "out/nifti", class_names=names)  # out/nifti/synthetic_000000.nii.gz

DICOM export is built for sharing outside the hospital: each file is a new Secondary Capture object
(ImageType DERIVED\\SECONDARY, Conversion Type SYN = synthetic image, BurnedInAnnotation NO, Patient Identity
Removed YES) with new Study/Series/SOP Instance UIDs, and ImageComments / DerivationDescription stating that
the image is synthetic and which generator made it. From ``reference`` only image-description attributes
are copied (:data:`REFERENCE_ATTRIBUTES`): the coded ones (modality, photometric interpretation, view
position, body part, laterality) only when the value is a defined term of the standard
(:mod:`medsyn.data.dicom_terms`, PS3.3 sections cited there), else they are dropped; pixel spacing only as
two numbers in (0, 50] mm, bits only as 8 or 16. So no identifier typed into a coded field can ride along.
Nothing else of the reference is read into the output: no patient, study, visit, institution, operator or
device identifiers, no dates or times, no comments, no free text, no private tags, no UIDs.

All files go to ``out_dir`` atomically; nothing is written next to the reference. Class names become
folder names only through :func:`medsyn.data.safe_names.class_folder_name` (no separators, ``..``, leading
dot or control characters; ``labels.csv`` keeps the original name), and every destination is resolved and
refused if it lies outside ``out_dir`` (e.g. through a symlinked class folder).

``out_dir`` must be new, empty or a folder the same export function wrote (medsyn.io.output_folder): a
folder of real images, or any folder medsyn did not write, is refused before anything is written.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch

from medsyn._version import __version__
from medsyn.data.dicom_terms import defined_term
from medsyn.data.safe_names import class_folder_names, destination_inside
from medsyn.io.atomic import write_bytes_atomic, write_text_atomic
from medsyn.io.output_folder import writes_output_folder

__all__ = ["REFERENCE_ATTRIBUTES", "export_dicom", "export_png", "export_nifti"]

SECONDARY_CAPTURE_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.7"
# The only attributes ever taken from a reference. Coded ones are copied only as a defined term of the
# standard; numbers only in a physical range, so a reference that hides text or an ID in them leaks nothing.
_CODED_ATTRIBUTES = (
    "Modality", "PhotometricInterpretation", "ViewPosition", "BodyPartExamined", "Laterality",
)
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_MAX_PIXEL_SPACING_MM = 50.0
REFERENCE_ATTRIBUTES = (*_CODED_ATTRIBUTES, "PixelSpacing", "ImagerPixelSpacing", "BitsStored")


def _check_images(images: torch.Tensor | np.ndarray, labels, class_names: Sequence[str] | None):
    array = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    if array.ndim != 4 or array.shape[1] not in (1, 3) or len(array) == 0:
        raise ValueError(f"images must be float [N, 1 or 3, H, W] with N > 0, got shape {array.shape}")
    if not np.isfinite(array).all() or array.min() < 0 or array.max() > 1:
        raise ValueError("images must be finite and lie in [0, 1]")
    label_array = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if label_array.shape != (len(array),) or not np.issubdtype(label_array.dtype, np.integer):
        raise ValueError(f"labels must be int [{len(array)}], got {label_array.shape} {label_array.dtype}")
    if label_array.min() < 0 or (class_names is not None and label_array.max() >= len(class_names)):
        raise ValueError(f"labels must lie in [0, {len(class_names) if class_names else 'classes'})")
    if class_names is None:
        class_names = [str(c) for c in range(int(label_array.max()) + 1)]
    names = list(class_names)
    return array.astype(np.float64), label_array.astype(np.int64), names


def _destinations(out_dir: Path, relative: list[str]) -> list[Path]:
    """``out_dir / name`` for each name plus ``labels.csv`` (last), every one checked inside ``out_dir``
    before the first byte is written."""
    return [destination_inside(out_dir, name) for name in [*relative, "labels.csv"]]


def _labels_csv(paths: list[str], labels: np.ndarray, names: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["filename", "label"])  # read by both labels_csv and labelled_folder
    writer.writerows([path, names[label]] for path, label in zip(paths, labels))
    return buffer.getvalue()


def _write_export(
    targets: list[Path], encoded: Iterable[bytes], listed: list[str], labels: np.ndarray, names: list[str]
) -> list[Path]:
    """Write each encoded file to its destination as it is encoded, then ``labels.csv`` (the last
    destination, listing ``listed``); return the image files' paths."""
    paths = [write_bytes_atomic(target, data) for target, data in zip(targets[:-1], encoded)]
    write_text_atomic(targets[-1], _labels_csv(listed, labels, names))
    return paths


def _reference_attributes(reference, rows: int) -> dict[str, object]:
    """The allowed image-description attributes of ``reference`` (a path or pydicom Dataset), validated."""
    import pydicom

    if reference is None:
        return {}
    if not isinstance(reference, pydicom.Dataset):
        reference_path = Path(reference)
        if not reference_path.is_file():
            raise FileNotFoundError(f"reference DICOM not found: {reference_path}")
        reference = pydicom.dcmread(io.BytesIO(reference_path.read_bytes()), stop_before_pixels=True)
    kept: dict[str, object] = {}
    for keyword in _CODED_ATTRIBUTES:
        term = defined_term(keyword, reference.get(keyword))
        if term is not None:
            kept[keyword] = term
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        value = reference.get(keyword)
        if (
            isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2
            and all(_NUMBER.match(str(v).strip()) for v in value)
            and all(0 < float(v) <= _MAX_PIXEL_SPACING_MM for v in value)
        ):
            # The synthetic image covers the same field of view with ``rows`` rows.
            scale = float(reference.get("Rows", rows) or rows) / rows
            kept[keyword] = [f"{float(v) * scale:.6g}" for v in value]
    bits = reference.get("BitsStored")
    if bits is not None and int(bits) in (8, 16):
        kept["BitsStored"] = int(bits)
    return kept


def _output_description(reference, rows: int, channels: int, bits: int) -> tuple[dict[str, object], int]:
    """(image-description attributes every file gets, bits stored): the reference's allowed attributes with
    the photometric interpretation the images need (RGB; else the reference's MONOCHROME1/2, or MONOCHROME2),
    and the reference's BitsStored, else ``bits`` (8 for colour)."""
    description = _reference_attributes(reference, rows)
    if channels == 3:
        description["PhotometricInterpretation"] = "RGB"
        description["BitsStored"] = 8
    elif description.get("PhotometricInterpretation") not in ("MONOCHROME1", "MONOCHROME2"):
        description["PhotometricInterpretation"] = "MONOCHROME2"
    return description, int(description.pop("BitsStored", bits))


def _secondary_capture(
    number: int, class_name: str, generator: str, description: dict[str, object], study_uid: str,
    series_uid: str,
):
    """The Secondary Capture data set (without pixels) of synthetic image ``number`` (1, 2, ...): new UIDs,
    empty patient and study identifiers, the statement that it is synthetic, and ``description``."""
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    statement = (
        f"SYNTHETIC IMAGE generated by {generator} (medsyn {__version__}); class {class_name}; "
        "not an acquisition of any patient"
    )
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SECONDARY_CAPTURE_SOP_CLASS
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = SECONDARY_CAPTURE_SOP_CLASS
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
    # Type 2 attributes of the Patient/Study modules: present and empty (or a non-identifying marker).
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "SYNTHETIC", "SYNTHETIC", "", ""
    ds.StudyDate = ds.StudyTime = ds.ReferringPhysicianName = ds.StudyID = ds.AccessionNumber = ""
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = "synthetic image: no patient data used in the file"
    ds.Modality = description.get("Modality", "OT")
    ds.SeriesNumber, ds.InstanceNumber = 1, number
    ds.SeriesDescription = f"synthetic {generator}"
    ds.ConversionType = "SYN"  # PS3.3 C.8.6.1: Synthetic Image
    ds.SecondaryCaptureDeviceManufacturer = "medsyn"
    ds.SecondaryCaptureDeviceManufacturerModelName = str(generator)[:64]
    ds.SecondaryCaptureDeviceSoftwareVersions = __version__
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.BurnedInAnnotation = "NO"
    ds.ImageComments = statement
    ds.DerivationDescription = statement
    ds.PatientOrientation = ""
    for keyword in ("PixelSpacing", "ImagerPixelSpacing", "ViewPosition", "BodyPartExamined", "Laterality"):
        if keyword in description:
            setattr(ds, keyword, description[keyword])
    return ds


def _set_pixels(ds, image: np.ndarray, photometric: str, stored_bits: int) -> None:
    """Store ``image`` (float [C, H, W] in [0, 1]) in ``ds``: 8-bit RGB, or grey with ``stored_bits`` bits
    (inverted for MONOCHROME1) and a window covering the full range."""
    channels, rows, columns = image.shape
    ds.Rows, ds.Columns = rows, columns
    ds.SamplesPerPixel = channels
    ds.PhotometricInterpretation = photometric
    ds.PixelRepresentation = 0
    if channels == 3:
        ds.PlanarConfiguration = 0
        ds.BitsAllocated = ds.BitsStored = 8
        ds.HighBit = 7
        pixels = np.round(image.transpose(1, 2, 0) * 255).astype(np.uint8)
    else:
        ds.BitsAllocated = 8 if stored_bits == 8 else 16
        ds.BitsStored, ds.HighBit = stored_bits, stored_bits - 1
        grey = 1.0 - image[0] if photometric == "MONOCHROME1" else image[0]
        maximum = 2**stored_bits - 1
        pixels = np.round(grey * maximum).astype(np.uint8 if stored_bits == 8 else np.uint16)
        ds.WindowCenter, ds.WindowWidth = f"{(maximum + 1) / 2:g}", f"{maximum + 1:g}"
    ds.PixelData = pixels.tobytes()


def _dicom_file(
    image: np.ndarray, number: int, class_name: str, generator: str, description: dict[str, object],
    stored_bits: int, study_uid: str, series_uid: str,
) -> bytes:
    """Synthetic image ``number`` as the bytes of a DICOM Part 10 file (in memory, so the write itself can be
    atomic)."""
    import pydicom

    ds = _secondary_capture(number, class_name, generator, description, study_uid, series_uid)
    _set_pixels(ds, image, description["PhotometricInterpretation"], stored_bits)
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


@writes_output_folder("out_dir")
def export_dicom(
    images: torch.Tensor | np.ndarray,
    labels: torch.Tensor | np.ndarray | Sequence[int],
    out_dir: str | os.PathLike,
    reference=None,
    generator: str = "medsyn generator",
    class_names: Sequence[str] | None = None,
    bits: int = 16,
) -> list[Path]:
    """Write each image (float [N, C, H, W] in [0, 1]) as a Secondary Capture DICOM file; return the paths.

    Grey images are stored with ``bits`` (8 or 16; a reference's BitsStored wins) as MONOCHROME2 (or
    MONOCHROME1, inverted, if the reference is MONOCHROME1); colour as 8-bit RGB. ``out_dir/labels.csv``
    maps each file to its class name (readable by the ``dicom_folder`` source).
    """
    from pydicom.uid import generate_uid

    array, label_array, names = _check_images(images, labels, class_names)
    if bits not in (8, 16):
        raise ValueError(f"bits must be 8 or 16, got {bits!r}")
    out_dir = Path(out_dir)
    if isinstance(reference, (str, os.PathLike)) and Path(reference).resolve().parent == out_dir.resolve():
        raise ValueError(f"out_dir {out_dir} is the reference's folder; keep synthetic and real files apart")
    _, channels, rows, _ = array.shape
    names_written = [f"synthetic_{index:06d}.dcm" for index in range(len(array))]
    targets = _destinations(out_dir, names_written)
    description, stored_bits = _output_description(reference, rows, channels, bits)
    study_uid, series_uid = generate_uid(), generate_uid()
    encoded = (
        _dicom_file(
            image, index + 1, names[label], generator, description, stored_bits, study_uid, series_uid
        )
        for index, (image, label) in enumerate(zip(array, label_array))
    )
    return _write_export(targets, encoded, names_written, label_array, names)


def _png_file(image: np.ndarray, bits: int) -> bytes:
    """``image`` (float [C, H, W] in [0, 1]) as the bytes of a PNG: 8-bit RGB, or 8- or 16-bit grey."""
    from PIL import Image

    if image.shape[0] == 3:
        picture = Image.fromarray(np.round(image.transpose(1, 2, 0) * 255).astype(np.uint8), mode="RGB")
    elif bits == 16:
        picture = Image.fromarray(np.round(image[0] * 65535).astype(np.uint16))
    else:
        picture = Image.fromarray(np.round(image[0] * 255).astype(np.uint8), mode="L")
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


@writes_output_folder("out_dir")
def export_png(
    images: torch.Tensor | np.ndarray,
    labels: torch.Tensor | np.ndarray | Sequence[int],
    out_dir: str | os.PathLike,
    class_names: Sequence[str] | None = None,
    bits: int = 8,
) -> list[Path]:
    """Write ``out_dir/<class name>/synthetic_<i>.png`` (8- or 16-bit grey, 8-bit RGB) + ``labels.csv``.

    The class-per-folder layout is what the ``image_folder`` source reads. A class name is turned into a
    safe folder name (``class_folder_name``: "../x" -> "_._x"); ``labels.csv`` keeps the original name.
    ValueError if two names map to one folder or a destination resolves outside ``out_dir``.
    """
    array, label_array, names = _check_images(images, labels, class_names)
    if bits not in (8, 16) or (bits == 16 and array.shape[1] == 3):
        raise ValueError(f"bits must be 8, or 16 for grey images, got {bits!r}")
    folders = class_folder_names(names)
    relative = [f"{folders[label]}/synthetic_{index:06d}.png" for index, label in enumerate(label_array)]
    targets = _destinations(Path(out_dir), relative)
    encoded = (_png_file(image, bits) for image in array)
    return _write_export(targets, encoded, relative, label_array, names)


def _nifti_file(image: np.ndarray, generator: str) -> bytes:
    """``image`` (float [C, H, W] in [0, 1]) as the bytes of a gzipped single-file NIfTI: float32 [W, H, 1]
    or [W, H, 1, 3], identity affine, ``descrip`` naming the generator."""
    import nibabel as nib

    volume = image.transpose(2, 1, 0)[:, :, None, :].astype(np.float32)  # [W, H, 1, C]
    volume = volume[..., 0] if volume.shape[-1] == 1 else volume
    nifti = nib.Nifti1Image(volume, affine=np.eye(4))
    nifti.header["descrip"] = f"synthetic {generator}"[:79].encode("ascii", "replace")
    return gzip.compress(nifti.to_bytes(), mtime=0)


@writes_output_folder("out_dir")
def export_nifti(
    images: torch.Tensor | np.ndarray,
    labels: torch.Tensor | np.ndarray | Sequence[int],
    out_dir: str | os.PathLike,
    class_names: Sequence[str] | None = None,
    generator: str = "medsyn generator",
) -> list[Path]:
    """Write each image as ``out_dir/synthetic_<i>.nii.gz`` (float32 [W, H, 1] or [W, H, 1, 3]; identity
    affine; ``descrip`` says it is synthetic) + ``labels.csv`` (readable by the ``nifti_folder`` source).

    Axis order follows NIfTI's (i = column, j = row), so slicing axis 2 gives back the [H, W] image.
    """
    array, label_array, names = _check_images(images, labels, class_names)
    relative = [f"synthetic_{index:06d}.nii.gz" for index in range(len(array))]
    targets = _destinations(Path(out_dir), relative)
    encoded = (_nifti_file(image, generator) for image in array)
    return _write_export(targets, encoded, relative, label_array, names)
