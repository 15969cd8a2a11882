"""The quickstart bundle end to end, through `python -m monai.bundle run`, at a size that runs in CI."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "bundles" / "medsyn_quickstart" / "configs" / "quickstart.yaml"
META = ROOT / "bundles" / "medsyn_quickstart" / "configs" / "metadata.json"

# Shrinks every stage; the structure of the run is the one `make demo` runs.
SMALL = [
    "--data#per_class", "12",
    "--models#cvae#config#steps", "30",
    "--models#stylegan2#config#steps", "10",
    "--models#ddpm#config#steps", "10",
    "--models#ddpm#config#sampling_steps", "3",
    "--speed#count", "8",
    "--speed#repeats", "1",
    "--classifier#epochs", "1",
    "--privacy#q", "20",
    "--privacy#repeats", "3",
    "--progress", "False",
]



@pytest.fixture(scope="module")
def quickstart_run(tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("quickstart")
    command = [
        sys.executable, "-m", "monai.bundle", "run",
        "--config_file", str(CONFIG), "--meta_file", str(META), "--output_dir", str(output_dir), *SMALL,
    ]
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-6000:]
    return output_dir, completed


def test_quickstart_writes_finite_results_for_three_models(quickstart_run):
    output_dir, completed = quickstart_run
    results = json.loads((output_dir / "results.json").read_text())
    assert results["schema_version"] == 2 and results["workflow"] == "quickstart"
    sets = results["synthetic_sets"]
    assert set(sets) == {"cvae", "stylegan2", "ddpm"}
    for model, entry in sets.items():
        manifold = entry["fidelity"]["effnet_lite0"]
        assert set(manifold) == {"precision", "recall", "density", "coverage", "fid"}, model
        assert 0.0 <= manifold["precision"]["mean"] <= 1.0 and math.isfinite(manifold["fid"]["mean"])
        for section, metric in (("utility", "accuracy"), ("robustness", "adversarial_accuracy")):
            assert set(entry[section]) == {"baseline_real", "data_anonymization"}
            assert 0.0 <= entry[section]["data_anonymization"]["1x"][metric]["mean"] <= 1.0
        assert -1.0 <= entry["privacy"]["ssim_max_full"]["mean"] <= 1.0
        assert entry["sampling_speed"]["mean"] > 0 and entry["sampling_speed"]["n_seeds"] == 1
    # the baseline is one classifier shared by all models
    assert len({json.dumps(e["utility"]["baseline_real"]) for e in sets.values()}) == 1
    meta = results["metadata"]
    assert meta["seeds"] == [0] and meta["config"]["extractor"] == "effnet_lite0"
    assert meta["versions"]["torch"].startswith("2.13")
    assert meta["data"]["split_sizes"]["train"] == 120
    assert "report written to" in completed.stdout


def test_quickstart_writes_report_figure_csv_and_artefacts(quickstart_run):
    output_dir, _ = quickstart_run
    assert (output_dir / "figures" / "radar.png").read_bytes()[:4] == b"\x89PNG"
    report = (output_dir / "report.md").read_text()
    assert "![Radar" in report and "cvae" in report
    assert (output_dir / "report.html").is_file()
    csv_lines = (output_dir / "results.csv").read_text().splitlines()
    assert csv_lines[0].startswith("synthetic_set,") and len(csv_lines) > 4
    manifest = json.loads((output_dir / "split_manifest.json").read_text())
    assert manifest["seed"] == 0
    for model in ("cvae", "stylegan2", "ddpm"):
        assert (output_dir / "models" / model / "seed0" / "checkpoint.pt").is_file()
        assert (output_dir / "models" / model / "seed0" / "synthetic.npz").is_file()
    # no temporary files left behind by the atomic writers
    assert not list(output_dir.rglob("*.tmp"))
