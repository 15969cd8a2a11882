"""The CVAE bundle end to end through `python -m monai.bundle run`: train (train.yaml + tiny.yaml, with
command-line overrides) writes a checkpoint into --output_dir, and inference.yaml writes N PNGs per class
plus an .npz from it. (An explicit checkpoint= is covered by tests/workflows; each bundle run costs a
full interpreter start, so this test runs the two commands only.)"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from medsyn.training.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "bundles" / "medsyn_cvae" / "configs"


def _bundle_run(*arguments: str) -> None:
    command = [sys.executable, "-m", "monai.bundle", "run", *arguments]
    result = subprocess.run(
        command,
        check=False,  # the return code is asserted below, with the output
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, (
        f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )


def test_train_then_generate_through_monai_bundle_run(tmp_path):
    output_dir = tmp_path / "run"
    train_configs = f"['{CONFIGS / 'train.yaml'}','{CONFIGS / 'tiny.yaml'}']"
    # tiny.yaml as shipped trains 300 steps; the test shortens it further by command-line override
    _bundle_run(
        "--config_file",
        train_configs,
        "--output_dir",
        str(output_dir),
        "--steps",
        "30",
        "--checkpoint_every",
        "10",
        "--progress",
        "False",
    )
    payload = load_checkpoint(output_dir / "checkpoint.pt", model="cvae")
    assert payload["step"] == 30 and len(payload["history"]) == 30
    assert payload["config"]["model_config"]["hidden_dims"] == [8, 16, 32]  # tiny.yaml applied
    assert payload["config"]["image_shape"] == [1, 32, 32]  # data#options#size override applied
    assert (output_dir / "split_manifest.json").is_file() and (output_dir / "training_summary.json").is_file()

    _bundle_run(
        "--config_file", str(CONFIGS / "inference.yaml"), "--output_dir", str(output_dir), "--per_class", "3"
    )
    synthetic = output_dir / "synthetic"
    archive = np.load(synthetic / "synthetic.npz")
    assert archive["images"].shape == (30, 1, 32, 32) and archive["images"].dtype == np.float32
    assert archive["labels"].tolist() == [c for c in range(10) for _ in range(3)]
    assert archive["class_names"].tolist() == [str(c) for c in range(10)]
    for class_index in range(10):
        pngs = sorted((synthetic / str(class_index)).glob("*.png"))
        assert [p.name for p in pngs] == ["00000.png", "00001.png", "00002.png"]
        pixels = np.asarray(Image.open(pngs[1]), dtype=np.float64) / 255
        np.testing.assert_allclose(pixels, archive["images"][class_index * 3 + 1, 0], atol=0.5 / 255 + 1e-6)
