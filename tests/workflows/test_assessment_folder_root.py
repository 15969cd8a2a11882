"""An assessment folder set whose labels CSV lists real images outside its folder is refused before any
training (the set would score real patients as synthetic); ``allow_outside_root: true`` accepts it."""

import re

import numpy as np
import pytest
import torch
from PIL import Image

from medsyn.config.sections import parse_synthetic_sets
from medsyn.data.export import export_png
from medsyn.data.image_set import ImageSet
from medsyn.evaluation.synthetic_sources import prepare_sources as _prepare_sources

pytestmark = [pytest.mark.filterwarnings("ignore:.*nvImageCodec.*")]


@pytest.fixture
def folder_with_real_row(tmp_path):
    real = tmp_path / "real_patients" / "p1.png"
    real.parent.mkdir()
    Image.fromarray(np.zeros((8, 8), dtype=np.uint8), mode="L").save(real)
    folder = tmp_path / "theirs"
    export_png(torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0)), [0, 1], folder,
               class_names=["neg", "pos"])
    csv_path = folder / "labels.csv"
    csv_path.write_text(csv_path.read_text() + "../real_patients/p1.png,pos\n")
    return folder, csv_path


def _train() -> ImageSet:
    return ImageSet(torch.rand(2, 1, 8, 8), torch.tensor([0, 1]), ("neg", "pos"), "real")


def test_folder_set_with_a_row_outside_its_folder_is_refused(folder_with_real_row):
    folder, csv_path = folder_with_real_row
    spec = parse_synthetic_sets({"theirs": {"kind": "folder", "path": str(folder), "labels_csv": str(csv_path)}})
    assert spec["theirs"]["allow_outside_root"] is False
    with pytest.raises(ValueError, match=rf"{re.escape(str(csv_path))}, row 3: path '../real_patients/p1.png'"):
        _prepare_sources(spec, _train(), 1)


def test_allow_outside_root_true_reads_the_row(folder_with_real_row):
    folder, csv_path = folder_with_real_row
    spec = parse_synthetic_sets({"theirs": {"kind": "folder", "path": str(folder), "labels_csv": str(csv_path),
                                            "allow_outside_root": True}})
    (source,) = _prepare_sources(spec, _train(), 1)
    assert source.fixed.labels.tolist() == [0, 1, 1]
