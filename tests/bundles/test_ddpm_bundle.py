"""The pixel DDPM bundle end to end through `python -m monai.bundle run`: train (train.yaml + tiny.yaml,
shortened by command-line overrides, with DP-SGD so the run must report epsilon) writes a checkpoint and a
training summary into --output_dir, and inference.yaml writes N PNGs per class plus an .npz from it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from medsyn.training.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "bundles" / "medsyn_ddpm" / "configs"


def _bundle_run(*arguments: str) -> None:
    command = [sys.executable, "-m", "monai.bundle", "run", *arguments]
    result = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"


def test_private_train_then_generate_through_monai_bundle_run(tmp_path):
    output_dir = tmp_path / "run"
    train_configs = f"['{CONFIGS / 'train.yaml'}','{CONFIGS / 'tiny.yaml'}']"
    _bundle_run("--config_file", train_configs, "--output_dir", str(output_dir), "--steps", "4",
                "--checkpoint_every", "2", "--progress", "False", "--model_config#sampling_steps", "3",
                "--dp", "{'noise_multiplier': 1.0, 'max_grad_norm': 1.0}")  # fmt: skip
    payload = load_checkpoint(output_dir / "checkpoint.pt", model="ddpm")
    assert payload["step"] == 4 and len(payload["history"]) == 4
    model_config = payload["config"]["model_config"]
    assert model_config["channels"] == [16, 32, 32] and model_config["sampler"] == "ddim"  # tiny.yaml applied
    assert model_config["sampling_steps"] == 3  # nested command-line override applied
    assert payload["config"]["image_shape"] == [1, 32, 32]
    summary = json.loads((output_dir / "training_summary.json").read_text())
    dp = summary["metadata"]["dp"]
    assert dp["noise_multiplier"] == 1.0 and dp["delta"] == 1 / summary["num_train"]
    assert 0 < dp["epsilon"] < float("inf")

    _bundle_run("--config_file", str(CONFIGS / "inference.yaml"), "--output_dir", str(output_dir), "--per_class", "2")
    synthetic = output_dir / "synthetic"
    archive = np.load(synthetic / "synthetic.npz")
    assert archive["images"].shape == (20, 1, 32, 32) and archive["images"].dtype == np.float32
    assert archive["images"].min() >= 0 and archive["images"].max() <= 1
    assert archive["labels"].tolist() == [c for c in range(10) for _ in range(2)]
    for class_index in range(10):
        pngs = sorted((synthetic / str(class_index)).glob("*.png"))
        assert [p.name for p in pngs] == ["00000.png", "00001.png"]
        pixels = np.asarray(Image.open(pngs[1]), dtype=np.float64) / 255
        np.testing.assert_allclose(pixels, archive["images"][class_index * 2 + 1, 0], atol=0.5 / 255 + 1e-6)
