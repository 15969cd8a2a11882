"""Strict configuration through `python -m monai.bundle run`, exactly as the READMEs document it: typos at the
top level and nested fail before any work (nothing is written into --output_dir) naming the key path and the
nearest valid key; `--progress false` and `--empirical_epsilon null` typed on the command line mean what
they say; the StyleGAN2 bundle refuses an unknown --device like every generator bundle."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from bundle_harness import ROOT, run_bundle

BUNDLES = ROOT / "bundles"


def _configs(*names: str) -> str:
    return "[" + ",".join(f"'{BUNDLES / name}'" for name in names) + "]"


CVAE = _configs("medsyn_cvae/configs/train.yaml", "medsyn_cvae/configs/tiny.yaml")
STYLEGAN2 = _configs("medsyn_stylegan2/configs/train.yaml", "medsyn_stylegan2/configs/tiny.yaml")
ASSESSMENT = _configs("medsyn_assessment/configs/assess.yaml", "medsyn_assessment/configs/tiny.yaml")
SWEEP = _configs("medsyn_dp_sweep/configs/sweep.yaml", "medsyn_dp_sweep/configs/tiny.yaml")


def _run(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "monai.bundle", "run", *arguments],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


@pytest.mark.parametrize(
    "configs, override, message",
    [
        (ASSESSMENT, ("--privacy#qq", "5"), "privacy.qq: unknown key; did you mean 'q'?"),
        (ASSESSMENT, ("--data#per_clas", "2"), "data.per_clas: unknown key; did you mean 'per_class'?"),
        (CVAE, ("--batch_szie", "8"), "batch_szie: unknown key; did you mean 'batch_size'?"),
        (SWEEP, ("--classifier#epoch", "1"), "classifier.epoch: unknown key; did you mean 'epochs'?"),
        (CVAE, ("--batch_size", "eight"), "batch_size: expected an integer, got 'eight'"),
        (STYLEGAN2, ("--device", "tpu"), "device must be 'auto', 'cpu', 'cuda' or 'cuda:<index>', got 'tpu'"),
    ],
    ids=["privacy.qq", "data.per_clas", "batch_szie", "classifier.epoch", "batch_size eight", "stylegan2 device tpu"],
)
def test_bad_config_fails_before_anything_is_written(tmp_path, configs, override, message):
    output_dir = tmp_path / "run"
    result = _run("--config_file", configs, "--output_dir", str(output_dir), *override)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr[-3000:]
    assert not output_dir.exists()


def test_progress_false_typed_on_the_command_line_draws_no_bars(tmp_path):
    output_dir = tmp_path / "run"
    result = _run("--config_file", CVAE, "--output_dir", str(output_dir), "--steps", "2", "--progress", "false")
    assert result.returncode == 0, result.stderr[-3000:]
    assert (output_dir / "checkpoint.pt").is_file()
    assert "train cvae" not in result.stderr + result.stdout  # the training bar's description
    assert "it/s" not in result.stderr


def test_empirical_epsilon_null_from_the_readme_skips_the_measurement(tmp_path):
    output_dir = tmp_path / "sweep"
    run_bundle("--config_file", SWEEP, "--output_dir", str(output_dir), "--empirical_epsilon", "null",
               "--sigmas", "[0.0, 0.4]", "--seeds", "[0, 1]", "--per_class", "2", "--steps", "2", "--utility_per_class", "4",
               "--classifier#epochs", "1")  # fmt: skip
    results = json.loads((output_dir / "results.json").read_text())
    assert results["metadata"]["empirical_epsilon"] is None
    assert not any(name.startswith("empirical_epsilon") for entry in results["synthetic_sets"].values()
                   for name in entry["privacy"])
    assert not list(output_dir.glob("seed_*/sigma_*/ablated_*.pt"))  # no ablated twin trained
