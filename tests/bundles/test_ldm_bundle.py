"""The latent diffusion bundle end to end through `python -m monai.bundle run`: train (train.yaml +
tiny.yaml, shortened by command-line overrides) runs both stages and writes both checkpoints into
--output_dir, and inference.yaml writes N PNGs per class plus an .npz from the final checkpoint."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from medsyn.training.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "bundles" / "medsyn_ldm" / "configs"


def _bundle_run(*arguments: str) -> None:
    command = [sys.executable, "-m", "monai.bundle", "run", *arguments]
    result = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"


def test_train_both_stages_then_generate_through_monai_bundle_run(tmp_path):
    output_dir = tmp_path / "run"
    train_configs = f"['{CONFIGS / 'train.yaml'}','{CONFIGS / 'tiny.yaml'}']"
    _bundle_run("--config_file", train_configs, "--output_dir", str(output_dir), "--steps", "3",
                "--model_config#autoencoder_steps", "4", "--model_config#sampling_steps", "3",
                "--checkpoint_every", "2", "--progress", "False")  # fmt: skip
    stage_1 = load_checkpoint(output_dir / "checkpoint_autoencoder.pt", model="ldm_autoencoder")
    assert stage_1["step"] == 4 and len(stage_1["history"]) == 4
    payload = load_checkpoint(output_dir / "checkpoint.pt", model="ldm")
    assert payload["step"] == 3 and len(payload["history"]) == 3
    model_config = payload["config"]["model_config"]
    assert model_config["autoencoder_channels"] == [16, 32, 32] and model_config["class_embedding_dim"] == 64
    assert payload["config"]["image_shape"] == [1, 32, 32]
    assert float(payload["state"]["codec"]["scale_factor"]) > 0  # the latent scale is part of the model
    assert (output_dir / "training_summary.json").is_file()

    _bundle_run("--config_file", str(CONFIGS / "inference.yaml"), "--output_dir", str(output_dir), "--per_class", "2")
    synthetic = output_dir / "synthetic"
    archive = np.load(synthetic / "synthetic.npz")
    assert archive["images"].shape == (20, 1, 32, 32) and archive["images"].dtype == np.float32
    assert archive["labels"].tolist() == [c for c in range(10) for _ in range(2)]
    for class_index in range(10):
        pngs = sorted((synthetic / str(class_index)).glob("*.png"))
        assert [p.name for p in pngs] == ["00000.png", "00001.png"]
        pixels = np.asarray(Image.open(pngs[0]), dtype=np.float64) / 255
        np.testing.assert_allclose(pixels, archive["images"][class_index * 2, 0], atol=0.5 / 255 + 1e-6)
