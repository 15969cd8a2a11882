"""The compare workflow (bundle medsyn_compare): results.json files of several data sets merged into paper 000's
Fig. 7 (radar normalised over models x data sets), Figs. 5-6 and the merged table. Every bad input (missing
file, wrong schema, duplicate label, same file twice) is refused before anything is written; missing metrics
are left out of the figures with a message naming them; the bundle runs end to end through
`python -m monai.bundle run`. The inputs are schema-valid documents written with report/results.write_results."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from medsyn.config.strict import ConfigError
from medsyn.io.output_folder import ForeignFolderError, SettingsMismatchError
from medsyn.report.results import write_results
from medsyn.workflows.compare import COMPARE_FORMAT, run_compare

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "bundles" / "medsyn_compare" / "configs" / "compare.yaml"
META = ROOT / "bundles" / "medsyn_compare" / "configs" / "metadata.json"
OUTPUTS = ["compare.csv", "compare.json", "compare.md", "compare_metrics.csv", "figures"]
FIGURES = ["radar.png", "robustness_bars.png", "utility_bars.png"]


def stat(mean: float, half: float = 0.01) -> dict:
    return {"mean": mean, "ci90": [mean - half, mean + half], "n_seeds": 3}


def _set(precision: float, recall: float, accuracy: float, adversarial: float, ssim: float,
         speed: float | None, *, robustness: bool = True) -> dict:
    entry = {
        "kind": "generator" if speed is not None else "folder",
        "utility": {"baseline_real": {"0x": {"accuracy": stat(0.9), "macro_f1": stat(0.85)},
                                      "1x": {"accuracy": stat(0.9), "macro_f1": stat(0.85)}},
                    "data_anonymization": {"1x": {"accuracy": stat(accuracy), "macro_f1": stat(accuracy - 0.1)}}},
        "fidelity": {"effnet_lite0": {"precision": stat(precision), "recall": stat(recall), "fid": stat(40.0, 2.0)}},
        "privacy": {"ssim_max_paper": stat(ssim)},
    }
    if robustness:
        entry["robustness"] = {"baseline_real": {"0x": {"adversarial_accuracy": stat(0.1)},
                                                 "1x": {"adversarial_accuracy": stat(0.1)}},
                               "data_anonymization": {"1x": {"adversarial_accuracy": stat(adversarial)}}}
    if speed is not None:
        entry["sampling_speed"] = stat(speed, 1.0)
    return entry


def _document(sets: dict) -> dict:
    return {"schema_version": 2, "workflow": "assessment", "synthetic_sets": sets,
            "metadata": {"seeds": [0, 1, 2], "n_seeds": 3, "data": {"source": "digits"}}}


# fidelity: kvasir vae 0.2, dm 0.6; corn vae 0.4, dm 1.0 -> pooled cells 0, 0.5, 0.25, 1 -> vae 0.125, dm 0.75
# privacy (inverted): kvasir 0.9, 0.5; corn 0.3, 0.1 -> cells 0, 0.5, 0.75, 1 -> vae 0.375, dm 0.75
KVASIR = _document({"vae": _set(0.2, 0.5, 0.6, 0.3, 0.9, 100.0), "dm": _set(0.6, 0.7, 0.8, 0.2, 0.5, 10.0)})
CORN = _document({"vae": _set(0.4, 0.3, 0.5, 0.4, 0.3, 120.0), "dm": _set(1.0, 0.9, 0.9, 0.1, 0.1, 12.0)})


def _write(folder: Path, document: dict) -> Path:
    write_results(folder, document)
    return folder / "results.json"


@pytest.fixture
def two_files(tmp_path) -> list[dict]:
    return [{"label": "kvasir", "path": str(_write(tmp_path / "kvasir", KVASIR))},
            {"label": "corn", "path": str(_write(tmp_path / "corn", CORN))}]


def test_compare_writes_the_pooled_radar_bars_and_table(two_files, tmp_path):
    output = tmp_path / "out"
    report = run_compare(str(output), results=two_files)
    assert report == output / "compare.md"
    assert sorted(os.listdir(output)) == sorted([".medsyn-outputs.json", ".medsyn.lock", *OUTPUTS])
    assert sorted(os.listdir(output / "figures")) == FIGURES
    summary = json.loads((output / "compare.json").read_text())
    assert summary["format"] == COMPARE_FORMAT and summary["notes"] == []
    radar = summary["radar"]
    assert radar["models"] == ["dm", "vae"]  # results.json keeps its keys sorted
    assert radar["axes"] == ["fidelity", "diversity", "utility", "robustness", "privacy", "sampling speed"]
    assert radar["bounds"]["fidelity"] == [0.2, 1.0]
    assert radar["scores"]["vae"]["fidelity"] == pytest.approx(0.125)
    assert radar["scores"]["dm"]["fidelity"] == pytest.approx(0.75)
    assert radar["scores"]["vae"]["privacy"] == pytest.approx(0.375)
    assert radar["scores"]["dm"]["privacy"] == pytest.approx(0.75)
    # sampling speed 10..120: vae (100 - 10) / 110 and (120 - 10) / 110
    assert radar["scores"]["vae"]["sampling speed"] == pytest.approx((90 / 110 + 1.0) / 2)
    rows = list(csv.DictReader(io.StringIO((output / "compare.csv").read_text())))
    assert [(row["data_set"], row["synthetic_set"]) for row in rows] == [
        ("kvasir", "dm"), ("kvasir", "vae"), ("corn", "dm"), ("corn", "vae")]
    assert float(rows[3]["fidelity"]) == 0.4 and float(rows[3]["score_fidelity"]) == pytest.approx(0.25)
    assert float(rows[0]["fid_effnet_lite0"]) == 40.0
    metrics = list(csv.DictReader(io.StringIO((output / "compare_metrics.csv").read_text())))
    assert {row["data_set"] for row in metrics} == {"kvasir", "corn"}
    assert {"data_set", "synthetic_set", "metric", "mean", "ci90_low", "ci90_high", "n_seeds"} == set(metrics[0])
    markdown = report.read_text()
    assert "![Radar (paper 000 Fig. 7)](figures/radar.png)" in markdown
    assert "![Utility (paper 000 Fig. 5)](figures/utility_bars.png)" in markdown
    assert "| corn | vae | 0.4 (0.25) |" in markdown
    assert "Left out" not in markdown


def test_rerun_of_the_same_comparison_rewrites_it_and_another_comparison_is_refused(two_files, tmp_path):
    output = tmp_path / "out"
    run_compare(str(output), results=two_files)
    run_compare(str(output), results=two_files)
    with pytest.raises(SettingsMismatchError, match=r"results\[0\]\.label: \"kvasir\" .* vs \"other\""):
        run_compare(str(output), results=[{**two_files[0], "label": "other"}, two_files[1]])


def _assert_refused_and_empty(output: Path, error: type, match: str, results) -> None:
    output.mkdir()
    with pytest.raises(error, match=match):
        run_compare(str(output), results=results)
    assert os.listdir(output) == []


def test_a_missing_file_is_refused_before_anything_is_written(two_files, tmp_path):
    missing = str(tmp_path / "nowhere" / "results.json")
    _assert_refused_and_empty(tmp_path / "out", FileNotFoundError,
                              rf"^results\[1\]\.path: {missing} does not exist \(expected the results.json of data "
                              "set 'corn'", [two_files[0], {"label": "corn", "path": missing}])


@pytest.mark.parametrize("content, match", [
    ({**KVASIR, "schema_version": 3}, r"is not a medsyn results document of schema version 2: results: expected "
                                      r"schema_version 2, found schema_version 3"),
    ({"models": {}, "metadata": {}}, r"is a medsyn results file in the schema-1 quickstart layout \('models'\); "
                                     "compare reads schema version 2"),
    ([1, 2], r"holds a JSON list, not a medsyn results document"),
    ("not json", r"cannot be read as JSON"),
])
def test_a_file_of_the_wrong_schema_is_refused_before_anything_is_written(two_files, tmp_path, content, match):
    bad = tmp_path / "bad.json"
    bad.write_text(content if isinstance(content, str) else json.dumps(content))
    _assert_refused_and_empty(tmp_path / "out", ValueError, rf"^results\[1\]\.path: {bad} {match}",
                              [two_files[0], {"label": "corn", "path": str(bad)}])


def test_a_duplicate_label_is_refused_before_the_output_folder_is_touched(two_files, tmp_path):
    _assert_refused_and_empty(
        tmp_path / "out", ConfigError,
        r"^results\[1\]\.label: 'kvasir' is already the label of results\[0\]; every data set needs its own label$",
        [two_files[0], {**two_files[1], "label": "kvasir"}])


def test_the_same_file_twice_and_bad_entries_are_refused(two_files, tmp_path):
    _assert_refused_and_empty(tmp_path / "out1", ValueError, r"^results\[1\]\.path: .* is the file of results\[0\] too",
                              [two_files[0], {**two_files[0], "label": "again"}])
    _assert_refused_and_empty(tmp_path / "out2", ConfigError, r"^results\[0\]\.pth: unknown key; did you mean 'path'\?$",
                              [{"label": "a", "pth": "x"}])
    _assert_refused_and_empty(tmp_path / "out3", ConfigError, r"^results: expected a non-empty list .* got an empty list",
                              [])
    with pytest.raises(ConfigError, match=r"^results\[0\]\.path: missing"):
        run_compare(str(tmp_path / "out4"), results=[{"label": "a"}])
    assert not (tmp_path / "out4").exists()


def test_an_output_folder_medsyn_did_not_write_is_refused(two_files, tmp_path):
    output = tmp_path / "study"
    output.mkdir()
    (output / "notes.txt").write_text("mine")
    with pytest.raises(ForeignFolderError, match="is not empty and medsyn did not write it"):
        run_compare(str(output), results=two_files)
    assert os.listdir(output) == ["notes.txt"]


def test_missing_metrics_are_left_out_with_a_message_naming_them(tmp_path, capsys):
    # corn: dm is a folder set (no sampling speed), no robustness anywhere, and a third set only corn has
    corn = _document({"vae": _set(0.4, 0.3, 0.5, 0.4, 0.3, 120.0, robustness=False),
                      "dm": _set(1.0, 0.9, 0.9, 0.1, 0.1, None, robustness=False),
                      "extra": _set(0.5, 0.5, 0.5, 0.5, 0.5, 1.0, robustness=False)})
    files = [{"label": "kvasir", "path": str(_write(tmp_path / "kvasir", KVASIR))},
             {"label": "corn", "path": str(_write(tmp_path / "corn", corn))}]
    output = tmp_path / "out"
    run_compare(str(output), results=files)
    summary = json.loads((output / "compare.json").read_text())
    assert summary["radar"]["models"] == ["dm", "vae"]
    assert summary["radar"]["axes"] == ["fidelity", "diversity", "utility", "privacy"]
    notes = summary["notes"]
    assert any(note.startswith("the radar (Fig. 7) leaves out synthetic set 'extra': it is not in data set(s) kvasir")
               for note in notes)
    assert any(note.startswith("the radar (Fig. 7) leaves out the robustness axis") and "missing in corn/dm, corn/vae"
               in note for note in notes)
    assert any(note.startswith("the radar (Fig. 7) leaves out the sampling speed axis") and note.endswith(
        "missing in corn/dm") for note in notes)
    assert "Fig. 6 (robustness) leaves out data set 'corn'" in " ".join(notes)
    printed = capsys.readouterr().out
    assert all(f"medsyn compare: {note}" in printed for note in notes)
    assert "## Left out" in (output / "compare.md").read_text()
    assert summary["radar"]["scores"]["vae"]["fidelity"] == pytest.approx(0.125)  # extra's 0.5 does not count
    assert sorted(os.listdir(output / "figures")) == FIGURES  # kvasir still has robustness bars


def test_no_radar_when_fewer_than_three_axes_and_the_wrong_extractor_is_named(two_files, tmp_path):
    output = tmp_path / "out"
    run_compare(str(output), results=two_files, extractor="inception_v3")
    summary = json.loads((output / "compare.json").read_text())
    notes = " ".join(summary["notes"])
    assert "leaves out the fidelity axis" in notes and "extractors with precision/recall in these files: effnet_lite0" in notes
    assert summary["radar"]["axes"] == ["utility", "robustness", "privacy", "sampling speed"]
    only_two = [{"label": label, "path": str(_write(tmp_path / label, _document(
        {"vae": {"kind": "folder", "privacy": {"ssim_max_paper": stat(0.5)}}})))} for label in ("a", "b")]
    output2 = tmp_path / "out2"
    run_compare(str(output2), results=only_two)
    summary = json.loads((output2 / "compare.json").read_text())
    assert summary["radar"]["scores"] is None
    assert any(note.startswith("no radar (Fig. 7): only 1 axes (privacy)") for note in summary["notes"])
    assert any(note.startswith("no Fig. 5 (utility)") for note in summary["notes"])
    assert not (output2 / "figures").exists()
    assert len(list(csv.DictReader(io.StringIO((output2 / "compare.csv").read_text())))) == 2


def _bundle(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "monai.bundle", "run", "--config_file", str(CONFIG),
                           "--meta_file", str(META), *arguments], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, check=False, env={**os.environ, "OMP_NUM_THREADS": "1"})


def test_the_bundle_runs_end_to_end(two_files, tmp_path):
    output = tmp_path / "bundle_out"
    results = "[" + ", ".join(f"{{'label': '{e['label']}', 'path': '{e['path']}'}}" for e in two_files) + "]"
    completed = _bundle("--output_dir", str(output), "--results", results)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    assert sorted(os.listdir(output / "figures")) == FIGURES
    summary = json.loads((output / "compare.json").read_text())
    assert [item["label"] for item in summary["inputs"]] == ["kvasir", "corn"]
    assert summary["radar"]["scores"]["dm"]["fidelity"] == pytest.approx(0.75)


def test_the_bundle_refuses_a_top_level_typo_and_no_results_before_writing(two_files, tmp_path):
    output = tmp_path / "bundle_out"
    completed = _bundle("--output_dir", str(output), "--extracter", "inception_v3")
    assert completed.returncode != 0
    assert "extracter: unknown key; did you mean 'extractor'?" in completed.stderr
    completed = _bundle("--output_dir", str(output))
    assert completed.returncode != 0
    assert "results: expected a non-empty list of {label, path}" in completed.stderr
    assert not output.exists()
