"""The pixel DDPM bundle end to end through `python -m monai.bundle run`: train (train.yaml + tiny.yaml,
shortened by command-line overrides, with DP-SGD so the run must report epsilon) writes a checkpoint and a
training summary into --output_dir, and inference.yaml writes N PNGs per class plus an .npz from it."""

import json

from bundle_harness import ROOT, assert_synthetic_folder, run_bundle

from medsyn.training.checkpoint import load_checkpoint

CONFIGS = ROOT / "bundles" / "medsyn_ddpm" / "configs"


def test_private_train_then_generate_through_monai_bundle_run(tmp_path):
    output_dir = tmp_path / "run"
    train_configs = f"['{CONFIGS / 'train.yaml'}','{CONFIGS / 'tiny.yaml'}']"
    run_bundle("--config_file", train_configs, "--output_dir", str(output_dir), "--steps", "4",
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

    run_bundle("--config_file", str(CONFIGS / "inference.yaml"), "--output_dir", str(output_dir), "--per_class", "2")
    assert_synthetic_folder(output_dir / "synthetic", per_class=2)
