"""The CVAE bundle end to end through `python -m monai.bundle run`: train (train.yaml + tiny.yaml, with
command-line overrides) writes a checkpoint into --output_dir, and inference.yaml writes N PNGs per class
plus an .npz from it. (An explicit checkpoint= is covered by tests/workflows; each bundle run costs a
full interpreter start, so this test runs the two commands only.)"""

from bundle_harness import ROOT, assert_synthetic_folder, run_bundle

from medsyn.training.checkpoint import load_checkpoint

CONFIGS = ROOT / "bundles" / "medsyn_cvae" / "configs"


def test_train_then_generate_through_monai_bundle_run(tmp_path):
    output_dir = tmp_path / "run"
    train_configs = f"['{CONFIGS / 'train.yaml'}','{CONFIGS / 'tiny.yaml'}']"
    # tiny.yaml as shipped trains 300 steps; the test shortens it further by command-line override
    run_bundle(
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

    run_bundle(
        "--config_file", str(CONFIGS / "inference.yaml"), "--output_dir", str(output_dir), "--per_class", "3"
    )
    assert_synthetic_folder(output_dir / "synthetic", per_class=3)
