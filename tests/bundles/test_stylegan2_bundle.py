"""The StyleGAN2 bundle end to end through `python -m monai.bundle run`: train (train.yaml + tiny.yaml, with
command-line overrides) writes a checkpoint into --output_dir and inference.yaml writes N PNGs per class plus
an .npz from it; a DP sigma sweep trains one discriminator-private model per sigma and reports epsilon."""

import json

from bundle_harness import ROOT, assert_synthetic_folder, run_bundle

from medsyn.training.checkpoint import load_checkpoint

CONFIGS = ROOT / "bundles" / "medsyn_stylegan2" / "configs"
TRAIN_CONFIGS = f"['{CONFIGS / 'train.yaml'}','{CONFIGS / 'tiny.yaml'}']"


def test_train_then_generate_through_monai_bundle_run(tmp_path):
    output_dir = tmp_path / "run"
    # tiny.yaml as shipped trains 300 steps; the test shortens it further by command-line override
    run_bundle("--config_file", TRAIN_CONFIGS, "--output_dir", str(output_dir), "--steps", "12",
               "--checkpoint_every", "5", "--progress", "False")  # fmt: skip
    payload = load_checkpoint(output_dir / "checkpoint.pt", model="stylegan2")
    assert payload["step"] == 12 and len(payload["history"]) == 12
    assert payload["config"]["model_config"]["w_dim"] == 64  # tiny preset applied
    assert payload["config"]["image_shape"] == [1, 32, 32]  # data#options#size override applied
    assert payload["config"]["training"]["batch_size"] == 16
    summary = json.loads((output_dir / "training_summary.json").read_text())
    assert summary["metadata"]["minibatch_std"] is True and summary["metadata"]["private_networks"] == []

    inference = str(CONFIGS / "inference.yaml")
    run_bundle("--config_file", inference, "--output_dir", str(output_dir), "--per_class", "2")
    assert_synthetic_folder(output_dir / "synthetic", per_class=2)


def test_dp_sigma_sweep_trains_one_private_discriminator_per_sigma(tmp_path):
    output_dir = tmp_path / "dp"
    sweep = "{'noise_multiplier': [0.5, 2.0], 'max_grad_norm': 1.0}"
    run_bundle("--config_file", TRAIN_CONFIGS, "--output_dir", str(output_dir), "--steps", "3",
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
