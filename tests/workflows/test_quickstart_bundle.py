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

METRIC_PREFIXES = ["precision", "recall", "fid", "sampling_speed", "utility", "robustness", "privacy"]


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
    assert set(results["models"]) == {"cvae", "stylegan2", "ddpm"}
    for model, metrics in results["models"].items():
        for prefix in METRIC_PREFIXES:
            named = [m for m in metrics if m.startswith(prefix)]
            assert named, f"{model} has no {prefix} metric"
            for metric in named:
                assert math.isfinite(metrics[metric]["value"]), (model, metric)
        assert {"utility_real_baseline", "utility_synthetic_only", "robustness_real_baseline",
                "robustness_synthetic_only", "privacy_ssim_max_paper", "privacy_ssim_max_full",
                "fid_effnet_lite0", "precision_effnet_lite0", "recall_effnet_lite0"} <= set(metrics)
        assert 0.0 <= metrics["precision_effnet_lite0"]["value"] <= 1.0
        assert -1.0 <= metrics["privacy_ssim_max_full"]["value"] <= 1.0
        assert metrics["sampling_speed"]["value"] > 0
    # the baseline is one classifier shared by all models
    assert len({m["utility_real_baseline"]["value"] for m in results["models"].values()}) == 1
    meta = results["metadata"]
    assert meta["seed"] == 0 and meta["extractor"] == "effnet_lite0"
    assert meta["versions"]["torch"].startswith("2.13")
    assert meta["data"]["split_sizes"]["train"] == 120
    assert "report written to" in completed.stdout


def test_quickstart_writes_report_figure_csv_and_artefacts(quickstart_run):
    output_dir, _ = quickstart_run
    assert (output_dir / "radar.png").read_bytes()[:4] == b"\x89PNG"
    report = (output_dir / "report.md").read_text()
    assert "![Radar" in report and "| cvae |" in report and "lower is better" in report
    csv_lines = (output_dir / "results.csv").read_text().splitlines()
    assert csv_lines[0].startswith("model,") and len(csv_lines) == 4
    manifest = json.loads((output_dir / "split_manifest.json").read_text())
    assert manifest["seed"] == 0
    for model in ("cvae", "stylegan2", "ddpm"):
        assert (output_dir / "models" / model / "checkpoint.pt").is_file()
        assert (output_dir / "models" / model / "synthetic.npz").is_file()
    # no temporary files left behind by the atomic writers
    assert not list(output_dir.rglob("*.tmp"))
