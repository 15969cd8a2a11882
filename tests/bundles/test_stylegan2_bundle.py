"""The StyleGAN2 bundle end to end through `python -m monai.bundle run`: train (train.yaml + tiny.yaml, with
command-line overrides) writes a checkpoint into --output_dir and inference.yaml writes N PNGs per class plus
an .npz from it; a DP sigma sweep trains one discriminator-private model per sigma and reports epsilon."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from medsyn.training.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "bundles" / "medsyn_stylegan2" / "configs"
TRAIN_CONFIGS = f"['{CONFIGS / 'train.yaml'}','{CONFIGS / 'tiny.yaml'}']"


def _bundle_run(*arguments: str) -> None:
    command = [sys.executable, "-m", "monai.bundle", "run", *arguments]
    result = subprocess.run(
        command,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    output = f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{output}"


def test_train_then_generate_through_monai_bundle_run(tmp_path):
    output_dir = tmp_path / "run"
    # tiny.yaml as shipped trains 300 steps; the test shortens it further by command-line override
    _bundle_run("--config_file", TRAIN_CONFIGS, "--output_dir", str(output_dir), "--steps", "12",
                "--checkpoint_every", "5", "--progress", "False")  # fmt: skip
    payload = load_checkpoint(output_dir / "checkpoint.pt", model="stylegan2")
    assert payload["step"] == 12 and len(payload["history"]) == 12
    assert payload["config"]["model_config"]["w_dim"] == 64  # tiny preset applied
    assert payload["config"]["image_shape"] == [1, 32, 32]  # data#options#size override applied
    assert payload["config"]["training"]["batch_size"] == 16
    summary = json.loads((output_dir / "training_summary.json").read_text())
    assert summary["metadata"]["minibatch_std"] is True and summary["metadata"]["private_networks"] == []

    inference = str(CONFIGS / "inference.yaml")
    _bundle_run("--config_file", inference, "--output_dir", str(output_dir), "--per_class", "2")
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


def test_dp_sigma_sweep_trains_one_private_discriminator_per_sigma(tmp_path):
    output_dir = tmp_path / "dp"
    sweep = "{'noise_multiplier': [0.5, 2.0], 'max_grad_norm': 1.0}"
    _bundle_run("--config_file", TRAIN_CONFIGS, "--output_dir", str(output_dir), "--steps", "3",
                "--progress", "False", "--dp", sweep)  # fmt: skip
    epsilons = []
    for sigma in ("0.5", "2"):
        payload = load_checkpoint(output_dir / f"sigma_{sigma}" / "checkpoint.pt", model="stylegan2")
        metadata = payload["metadata"]
        assert metadata["private_networks"] == ["D"]
        assert metadata["minibatch_std"] is False and metadata["r1_regularisation"] is False
        assert "dp_accountant" in payload["state"]
        assert metadata["dp_delta"] == 1 / metadata["num_train"]
        epsilons.append(metadata["dp_epsilon"])
    assert epsilons[0] > epsilons[1] > 0  # more noise, less privacy spent
