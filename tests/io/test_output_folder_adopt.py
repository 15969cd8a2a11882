"""claim_output_folder(adopt=...): a file this process wrote just before the claim (MONAI's executed config
under --tracking) becomes an entry of the run; anything else there is still refused."""

import json

import pytest

from medsyn.io.output_folder import OWNERSHIP_NAME, ForeignFolderError, claim_output_folder


def test_an_adopted_file_is_recorded_and_other_files_are_still_refused(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "config_20261204_010203.json").write_text("{}")
    with claim_output_folder(folder, writer="w", adopt=["config_20261204_010203.json"]):
        pass
    ownership = json.loads((folder / OWNERSHIP_NAME).read_text())
    assert ownership["entries"] == ["config_20261204_010203.json"] and ownership["status"] == "finished"

    (folder / "notes.txt").write_text("the user's")
    with pytest.raises(ForeignFolderError, match="notes.txt"):
        with claim_output_folder(folder, writer="w", adopt=["config_20261204_020304.json"]):
            pass


def test_adopt_takes_top_level_names_only(tmp_path):
    with pytest.raises(ValueError, match="top-level entry name"):
        with claim_output_folder(tmp_path / "run", writer="w", adopt=["sub/config.json"]):
            pass
    with pytest.raises(ValueError, match="top-level entry name"):
        with claim_output_folder(tmp_path / "run", writer="w", adopt=[OWNERSHIP_NAME]):
            pass
