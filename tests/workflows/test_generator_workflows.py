"""train_generator / generate_images: files written, DP sigma sweep, explicit checkpoints, and config errors
that fail before any training."""

import json

import numpy as np
import pytest

from medsyn.training.checkpoint import load_checkpoint
from medsyn.workflows.generate_images import generate_images
from medsyn.workflows.train_generator import train_generator

DIGITS = {"kind": "digits", "options": {"size": 16}}
TINY = {"hidden_dims": [4, 8], "latent_dim": 4}


def _train(output_dir, **overrides):
    arguments = {
        "seed": 0,
        "per_class": 6,
        "model_config": TINY,
        "steps": 4,
        "batch_size": 12,
        "progress": False,
    }
    arguments.update(overrides)
    return train_generator("cvae", DIGITS, output_dir, **arguments)


def test_train_writes_manifest_checkpoint_and_summary_then_images_come_from_an_explicit_checkpoint(tmp_path):
    checkpoint = _train(tmp_path / "run")
    assert checkpoint == tmp_path / "run" / "checkpoint.pt"
    payload = load_checkpoint(checkpoint, model="cvae")
    assert payload["step"] == 4 and payload["metadata"]["num_train"] == 60  # per_class 6 x 10 classes
    assert json.loads((tmp_path / "run" / "split_manifest.json").read_text())
    summary = json.loads((tmp_path / "run" / "training_summary.json").read_text())
    assert summary["num_train"] == 60 and set(summary["final_losses"]) == {"loss", "reconstruction", "kl"}

    out = generate_images(
        tmp_path / "elsewhere", checkpoint=checkpoint, per_class=2, seed=1, out_dir=tmp_path / "png"
    )
    assert out == tmp_path / "png"
    archive = np.load(out / "synthetic.npz")
    assert archive["images"].shape == (20, 1, 16, 16) and min(p.name for p in out.iterdir() if p.name[0] != ".") == "0"
    # a second run replaces the folder as a whole (no stale images from the first)
    generate_images(tmp_path / "elsewhere", checkpoint=checkpoint, per_class=1, seed=1, out_dir=out)
    assert len(list((out / "3").glob("*.png"))) == 1 and np.load(out / "synthetic.npz")["labels"].shape == (
        10,
    )
    hidden = sorted(p.name for p in out.iterdir() if p.name[0] == ".")
    assert hidden == [".medsyn-outputs.json", ".medsyn.lock"]  # staging and retired folders cleaned up
    assert sorted(p.name for p in tmp_path.iterdir()) == ["png", "run"]  # nothing written beside out_dir


def test_dp_sigma_sweep_trains_one_model_per_sigma_with_its_epsilon(tmp_path):
    checkpoints = _train(tmp_path, dp={"noise_multiplier": [0.0, 0.5, 2.0], "max_grad_norm": 1.0})
    assert checkpoints == [tmp_path / f"sigma_{s}" / "checkpoint.pt" for s in ("0", "0.5", "2")]
    summaries = [json.loads((c.parent / "training_summary.json").read_text()) for c in checkpoints]
    epsilons = [s["metadata"]["dp"]["epsilon"] for s in summaries]
    assert epsilons[0] is None  # sigma 0: infinite epsilon, written as null
    assert 0 < epsilons[2] < epsilons[1]
    assert all(s["metadata"]["batchnorm_replaced_by_groupnorm"] for s in summaries)
    assert all(s["metadata"]["dp"]["delta"] == 1 / 60 for s in summaries)
    assert (tmp_path / "split_manifest.json").is_file()


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"model": "gan"}, "unknown model 'gan'"),
        ({"data": {"options": {}}}, r"data\.kind: required key is missing"),
        ({"data": {"kind": "digits", "option": {}}}, r"data\.option: unknown key; did you mean 'options'\?"),
        ({"dp": {"noise_multiplier": -1.0}}, "noise_multiplier"),
        ({"dp": {"noise_multiplier": [1.0, 1.0]}}, "twice"),
        ({"dp": {"noise_multiplier": 1.0, "clip": 1.0}}, r"dp\.clip: unknown key"),
        ({"steps": -3}, "steps"),
        ({"distributed": "mpi"}, "distributed"),
        ({"distributed": "gloo", "dp": {"noise_multiplier": 1.0}}, "one process"),
        ({"model_config": {"hidden_dims": [4, 8, 16, 32, 64]}}, "divisible by 32"),
    ],
)
def test_config_errors_fail_before_training_and_name_the_key(tmp_path, overrides, message):
    arguments = {
        "model": "cvae",
        "data": DIGITS,
        "output_dir": tmp_path,
        "model_config": TINY,
        "steps": 2,
        "progress": False,
        **overrides,
    }
    with pytest.raises(ValueError, match=message):
        train_generator(**arguments)
    assert not (tmp_path / "checkpoint.pt").exists()


def test_generate_images_refuses_missing_checkpoint_and_bad_counts(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint.pt"):
        generate_images(tmp_path, per_class=2)
    with pytest.raises(ValueError, match="per_class"):
        generate_images(tmp_path, per_class=0)


def test_device_setting_is_validated_before_training(tmp_path):
    from medsyn.training.device import resolve_device

    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda")
    for bad in ("tpu", "", "gpu0"):
        with pytest.raises(ValueError, match="device"):
            resolve_device(bad)
    with pytest.raises(ValueError, match="device"):
        _train(tmp_path, device="tpu")


def test_generate_images_passes_sampling_options_and_refuses_unknown_ones(tmp_path):
    import torch

    from medsyn.workflows import generate_images as module

    checkpoint = _train(tmp_path / "run")
    with pytest.raises(ValueError, match="sampling has keys \\['sampling_steps'\\].*CVAE.sample"):
        generate_images(tmp_path / "run", per_class=1, sampling={"sampling_steps": 5})

    seen = {}

    class DiffusionLike:
        num_classes, image_shape, metadata = 2, (1, 4, 4), {"class_names": ["a", "b"]}

        def sample(self, labels, seed=0, **overrides):
            seen.update(overrides, seed=seed)
            return torch.zeros(len(labels), 1, 4, 4)

    original = module.load_generator
    module.load_generator = lambda path: DiffusionLike()
    try:
        generate_images(tmp_path / "run", checkpoint=checkpoint, per_class=1, seed=3,
                        sampling={"sampler": "ddim", "sampling_steps": 7}, out_dir=tmp_path / "d")
    finally:
        module.load_generator = original
    assert seen == {"sampler": "ddim", "sampling_steps": 7, "seed": 3}
