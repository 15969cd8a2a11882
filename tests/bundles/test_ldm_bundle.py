"""The latent diffusion bundle end to end through `python -m monai.bundle run`: train (train.yaml +
tiny.yaml, shortened by command-line overrides) runs both stages and writes both checkpoints into
--output_dir, and inference.yaml writes N PNGs per class plus an .npz from the final checkpoint."""

from bundle_harness import ROOT, assert_synthetic_folder, run_bundle

from medsyn.training.checkpoint import load_checkpoint

CONFIGS = ROOT / "bundles" / "medsyn_ldm" / "configs"


def test_train_both_stages_then_generate_through_monai_bundle_run(tmp_path):
    output_dir = tmp_path / "run"
    train_configs = f"['{CONFIGS / 'train.yaml'}','{CONFIGS / 'tiny.yaml'}']"
    run_bundle("--config_file", train_configs, "--output_dir", str(output_dir), "--steps", "3",
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

    run_bundle("--config_file", str(CONFIGS / "inference.yaml"), "--output_dir", str(output_dir), "--per_class", "2")
    assert_synthetic_folder(output_dir / "synthetic", per_class=2)
