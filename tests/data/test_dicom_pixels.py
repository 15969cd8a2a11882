import copy

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.pixels import apply_windowing
from pydicom.sequence import Sequence

from medsyn.data.dicom_pixels import decodable_transfer_syntaxes, dicom_frames, window_to_unit_range

pytestmark = [
    pytest.mark.filterwarnings("ignore:.*nvImageCodec.*"),
]



def _bundled(name):
    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"{name} is not bundled with this pydicom")
    return pydicom.dcmread(path)


@pytest.mark.filterwarnings("ignore:overflow encountered in exp")  # in the pydicom oracle
@pytest.mark.parametrize("function", ["LINEAR", "LINEAR_EXACT", "SIGMOID"])
@pytest.mark.parametrize("center, width", [(40.0, 400.0), (0.0, 1.5), (100.0, 2.0)])
def test_window_matches_pydicom(function, center, width):
    # Oracle: pydicom's apply_windowing scaled from its output range [y_min, y_max] to [0, 1].
    ds = Dataset()
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsStored, ds.PixelRepresentation = 16, 0
    ds.WindowCenter, ds.WindowWidth, ds.VOILUTFunction = center, width, function
    values = np.linspace(-400, 600, 1001)
    expected = apply_windowing(values.copy(), ds) / (2**16 - 1)
    np.testing.assert_allclose(window_to_unit_range(values, center, width, function), expected, atol=1e-6)


def test_window_width_one_is_a_threshold():
    thresholded = window_to_unit_range(np.array([9.0, 9.5, 10.0]), 10.0, 1.0)
    np.testing.assert_array_equal(thresholded, [0.0, 0.0, 1.0])


def test_ct_rescale_then_configured_window_in_hounsfield_units():
    ds = _bundled("CT_small.dcm")
    stored = ds.pixel_array.astype(np.float64)
    hounsfield = stored * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    frames = dicom_frames(ds, where="ct", window=[40, 400])
    assert frames.shape == (1, 1, 128, 128)
    expected = np.clip((hounsfield - (40 - 0.5)) / 399 + 0.5, 0, 1)
    expected[hounsfield <= 39.5 - 199.5] = 0
    expected[hounsfield > 39.5 + 199.5] = 1
    np.testing.assert_allclose(frames[0, 0], expected, atol=1e-6)


def test_file_window_used_by_auto_and_minmax_otherwise():
    ds = _bundled("MR_small.dcm")  # Window Center 600, Width 1600
    values = ds.pixel_array.astype(np.float64)
    np.testing.assert_allclose(dicom_frames(ds, where="mr")[0, 0], window_to_unit_range(values, 600, 1600),
                               atol=1e-6)
    minmax = dicom_frames(ds, where="mr", window="minmax")[0, 0]
    np.testing.assert_allclose(minmax, (values - values.min()) / (values.max() - values.min()), atol=1e-6)
    ct = _bundled("CT_small.dcm")  # no window in the file: auto falls back to min-max
    assert dicom_frames(ct, where="ct").min() == 0.0 and dicom_frames(ct, where="ct").max() == 1.0
    with pytest.raises(ValueError, match="ct: window='file'"):
        dicom_frames(ct, where="ct", window="file")


def test_monochrome1_is_inverted():
    ds = _bundled("MR_small.dcm")
    normal = dicom_frames(ds, where="mr")
    inverted = copy.deepcopy(ds)
    inverted.PhotometricInterpretation = "MONOCHROME1"
    np.testing.assert_allclose(dicom_frames(inverted, where="mr1"), 1.0 - normal, atol=1e-7)


def test_voi_lut_sequence_applied():
    ds = _bundled("MR_small.dcm")
    del ds.WindowCenter, ds.WindowWidth
    lut = Dataset()
    lut.LUTDescriptor = [256, 0, 8]  # 256 entries, first maps stored value 0, 8-bit output
    table = (np.arange(256) // 2).astype(np.uint16)  # values >= 255 clamp to the last entry (127)
    lut.LUTData = table.tolist()
    ds.VOILUTSequence = Sequence([lut])
    values = ds.pixel_array
    expected = table[np.clip(values, 0, 255)] / 255.0
    np.testing.assert_allclose(dicom_frames(ds, where="voi")[0, 0], expected, atol=1e-6)


def test_multiframe_all_and_middle():
    ds = _bundled("rtdose.dcm")  # 15 frames of 10x10, no window: per-frame min-max
    every = dicom_frames(ds, where="dose")
    assert every.shape == (15, 1, 10, 10)
    middle = dicom_frames(ds, where="dose", frames="middle")
    np.testing.assert_allclose(middle[0], every[7])
    raw = ds.pixel_array[7].astype(np.float64)
    np.testing.assert_allclose(middle[0, 0], (raw - raw.min()) / (raw.max() - raw.min()), atol=1e-6)


def test_colour_keep_and_grey():
    ds = _bundled("SC_rgb_rle_2frame.dcm")
    rgb = dicom_frames(ds, where="rgb", color="keep")
    assert rgb.shape == (2, 3, 100, 100)
    np.testing.assert_allclose(rgb[1].transpose(1, 2, 0), ds.pixel_array[1] / 255.0, atol=1e-7)
    grey = dicom_frames(ds, where="rgb", color="grey")
    np.testing.assert_allclose(grey[:, 0], rgb.transpose(0, 2, 3, 1) @ np.array([0.299, 0.587, 0.114]),
                               atol=1e-6)


def test_ybr_jpeg_converted_to_rgb():
    ds = _bundled("SC_rgb_jpeg_dcmtk.dcm")  # YBR_FULL JPEG baseline; pydicom converts to RGB
    rgb = dicom_frames(ds, where="ybr", color="keep")
    assert rgb.shape == (1, 3, 100, 100)
    # the SC_rgb test pattern has a pure red band at the top: R high, G and B low
    assert rgb[0, 0, 2, 2] > 0.9 and rgb[0, 1, 2, 2] < 0.1 and rgb[0, 2, 2, 2] < 0.1


def test_palette_colour():
    ds = _bundled("examples_palette.dcm")
    rgb = dicom_frames(ds, where="palette", color="keep")
    assert rgb.shape == (1, 3, 800, 350) or rgb.shape == (1, 3, 350, 800)
    assert 0.0 <= rgb.min() and rgb.max() <= 1.0 and rgb.std() > 0.05


def test_rle_and_jpeg2000_lossless_decode_identically_to_uncompressed():
    assert "RLE Lossless" in decodable_transfer_syntaxes()
    plain = dicom_frames(_bundled("MR_small.dcm"), where="plain")
    np.testing.assert_array_equal(dicom_frames(_bundled("MR_small_RLE.dcm"), where="rle"), plain)
    if "JPEG 2000 Image Compression (Lossless Only)" in decodable_transfer_syntaxes():
        np.testing.assert_array_equal(dicom_frames(_bundled("MR_small_jp2klossless.dcm"), where="j2k"), plain)


@pytest.mark.parametrize(
    "kwargs, match",
    [({"window": "best"}, "window"), ({"window": [40]}, "window"), ({"window": [40, 0]}, "window"),
     ({"frames": "first"}, "frames"), ({"color": "sepia"}, "color")],
)
def test_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        dicom_frames(_bundled("MR_small.dcm"), where="mr", **kwargs)


def test_enhanced_multiframe_functional_groups_per_frame():
    """Rescale and window from the Shared / Per-frame Functional Groups (enhanced CT/MR layout)."""
    ds = _bundled("rtdose.dcm")  # 15 frames
    shared, transformation = Dataset(), Dataset()
    transformation.RescaleSlope, transformation.RescaleIntercept = 2.0, -1000.0
    shared.PixelValueTransformationSequence = Sequence([transformation])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    per_frame = []
    for frame in range(15):
        group, voi = Dataset(), Dataset()
        voi.WindowCenter, voi.WindowWidth = 2_000_000 + 20_000 * frame, 1_000_000
        group.FrameVOILUTSequence = Sequence([voi])
        per_frame.append(group)
    ds.PerFrameFunctionalGroupsSequence = Sequence(per_frame)
    out = dicom_frames(ds, where="enhanced")
    stored = ds.pixel_array.astype(np.float64)
    for frame in (0, 7, 14):
        expected = window_to_unit_range(stored[frame] * 2.0 - 1000.0, 2_000_000 + 20_000 * frame, 1_000_000)
        np.testing.assert_allclose(out[frame, 0], expected, atol=1e-6)
    middle = dicom_frames(ds, where="enhanced", frames="middle")
    np.testing.assert_allclose(middle[0], out[7], atol=1e-7)
