"""Every bundle's configs/metadata.json is valid against the MONAI bundle metadata schema kept in the repo
(bundles/schema/metadata_schema.json, written from MONAI's mb_specification.rst), checked offline with
monai.bundle.verify_metadata (which skips the download because the schema file is already on disk)."""

import json
import warnings
from pathlib import Path

import pytest
from monai.bundle import verify_metadata

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "bundles" / "schema" / "metadata_schema.json"
METADATA_FILES = sorted((ROOT / "bundles").glob("*/configs/metadata.json"))


def _verify(meta_file: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "no hash value provided" for the local schema file
        verify_metadata(meta_file=str(meta_file), filepath=str(SCHEMA), create_dir=False)


def test_there_are_bundles_to_check():
    assert SCHEMA.is_file()
    assert any(path.parent.parent.name == "medsyn_cvae" for path in METADATA_FILES)


@pytest.mark.parametrize("meta_file", METADATA_FILES, ids=lambda path: path.parent.parent.name)
def test_bundle_metadata_is_valid(meta_file):
    _verify(meta_file)


@pytest.mark.parametrize(
    "mutation, message",
    [
        (lambda m: m.pop("task"), "task"),
        (lambda m: m.pop("network_data_format"), "network_data_format"),
        (lambda m: m["network_data_format"]["outputs"]["images"].pop("dtype"), "dtype"),
        (
            lambda m: m["network_data_format"]["outputs"]["images"].update(num_channels=0),
            "less than the minimum of 1",
        ),
        (lambda m: m.update(version="one"), "'one' does not match"),
        (lambda m: m.pop("required_packages_version"), "not valid under any of the given schemas"),
    ],
)
def test_schema_rejects_broken_metadata(tmp_path, mutation, message):
    metadata = json.loads((ROOT / "bundles" / "medsyn_cvae" / "configs" / "metadata.json").read_text())
    mutation(metadata)
    broken = tmp_path / "metadata.json"
    broken.write_text(json.dumps(metadata))
    with pytest.raises(ValueError, match=message):
        _verify(broken)
