"""The DP sweep of paper 001 (Fig. 2, Table 1): the tiny bundle end to end through `python -m monai.bundle
run`, plus unit checks of its pieces (delta = 1/n_train, FID against the holdout, the figure, bad input)."""

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from medsyn.data.image_set import ImageSet
from medsyn.evaluation.dp_sweep import dp_settings_for_sigma
from medsyn.models.registry import build_generator
from medsyn.workflows.dp_sweep import run_dp_sweep

ROOT = Path(__file__).resolve().parents[2]
SWEEP = ROOT / "bundles" / "medsyn_dp_sweep" / "configs" / "sweep.yaml"
TINY = ROOT / "bundles" / "medsyn_dp_sweep" / "configs" / "tiny.yaml"
EMPIRICAL = ("empirical_epsilon_worst_paper_code", "empirical_epsilon_mean_paper_code",
             "empirical_epsilon_worst_with_d", "empirical_epsilon_mean_with_d")


@pytest.fixture(scope="module")
def tiny_sweep(tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("dp_sweep")
    command = [
        sys.executable,
        "-m",
        "monai.bundle",
        "run",
        "--config_file",
        f"['{SWEEP}','{TINY}']",
        "--output_dir",
        str(output_dir),
    ]
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900, check=False)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-6000:]
    return output_dir, json.loads((output_dir / "results.json").read_text())


def _sets(results):
    return sorted(results["synthetic_sets"].values(), key=lambda entry: entry["dp"]["sigma"])


def test_tiny_sweep_aggregates_every_metric_over_three_seeds(tiny_sweep):
    _output_dir, results = tiny_sweep
    assert results["schema_version"] == 2 and results["workflow"] == "dp_sweep"
    assert [entry["dp"]["sigma"] for entry in _sets(results)] == [0.1, 0.4]
    for entry in _sets(results):
        metrics = {  # every per-sigma metric of 001 Fig. 2 / Table 1 but LPIPS (no VGG16 weights here)
            "fid": entry["fidelity"]["effnet_lite0"]["fid_holdout"],
            "inception_score": entry["fidelity"]["inception_score"]["domain_baseline_real"],
            "psnr": entry["fidelity"]["unpaired_set"]["psnr"],
            "ssim": entry["fidelity"]["unpaired_set"]["ssim"],
            "dcr_ks": entry["privacy"]["dcr_ks"]["pixel"],
            "dcr_area": entry["privacy"]["dcr_area"]["pixel"],
            "dcr_area_normalised": entry["privacy"]["dcr_area_normalised"]["pixel"],
            "dp_epsilon": entry["privacy"]["dp_epsilon"],
            **{name: entry["privacy"][name] for name in EMPIRICAL},
            # tiny.yaml: 20 synthetic images per class for utility from 4 real per class -> 5x
            "utility": entry["utility"]["data_anonymization"]["5x"]["accuracy"],
        }
        for key, metric in metrics.items():
            assert metric["n_seeds"] == 3, (entry["dp"]["sigma"], key)
            low, high = metric["ci90"]
            assert low <= metric["mean"] <= high and all(map(math.isfinite, (low, metric["mean"], high)))
        assert 0.0 <= metrics["utility"]["mean"] <= 1.0 and metrics["fid"]["mean"] > 0
        assert metrics["inception_score"]["mean"] >= 1.0 - 1e-9 and 0 <= metrics["dcr_ks"]["mean"] <= 1
        assert 0 <= metrics["dcr_area_normalised"]["mean"] <= 1
        assert "lpips" not in entry["fidelity"]["unpaired_set"]  # no weights file: said so, never a silent 0
        assert entry["not_computed"]["lpips"].startswith("skipped: LPIPS uses the VGG16 backbone")
        per_seed = entry["per_seed"]
        assert [tree["seed"] for tree in per_seed] == [0, 1, 2]
        for tree in per_seed:  # one query per run: worst = mean; equal sample sizes: with_d = d * paper_code
            privacy = tree["privacy"]
            assert privacy["empirical_epsilon_worst_paper_code"] == privacy["empirical_epsilon_mean_paper_code"]
            assert privacy["empirical_epsilon_worst_with_d"] == pytest.approx(
                2 * privacy["empirical_epsilon_worst_paper_code"], rel=1e-9, abs=1e-12)
            setup = tree["empirical_epsilon_setup"]
            # digits, 4 images per class: no paper class, every class equally rare -> class 0; the victim set
            # holds the 36 images of the other classes plus the query, the ablated set those 36
            assert setup["query_class"] == 0 and setup["query_class_from"].startswith("least frequent class")
            assert setup["victim_size"] == 37 and setup["ablated_size"] == 36
            assert setup["isomap"]["real_images"] == 40 and setup["isomap"]["fit_points"] == 200  # + 4 noisy copies
        fids = [tree["fidelity"]["effnet_lite0"]["fid_holdout"] for tree in per_seed]
        assert metrics["fid"]["mean"] == pytest.approx(np.mean(fids), rel=1e-12)  # the aggregate is the mean


def test_tiny_sweep_epsilon_falls_as_sigma_rises_and_matches_the_accountant(tiny_sweep):
    _output_dir, results = tiny_sweep
    epsilons = [entry["privacy"]["dp_epsilon"]["mean"] for entry in _sets(results)]
    assert epsilons[0] > epsilons[1] > 0
    meta = results["metadata"]
    n_train = meta["data"]["split_sizes"]["train"]
    assert n_train == 4 * 10
    from opacus.accountants import RDPAccountant

    for entry in _sets(results):
        assert entry["dp"]["delta"] == 1.0 / n_train
        oracle = RDPAccountant()
        oracle.history = [(entry["dp"]["sigma"], meta["batch_size"] / n_train, meta["steps"])]
        expected = oracle.get_epsilon(delta=1.0 / n_train)
        assert entry["privacy"]["dp_epsilon"]["mean"] == pytest.approx(expected, rel=1e-9)
    assert results["metadata"]["empirical_epsilon"] == {
        "samples_per_class": 20,
        "query_class": None,
        "k": 20,
        "n_components": 2,
        "isomap_neighbors": 15,
        "isomap_per_class": 200,
        "isomap_noise_sigmas": [0.01, 0.05, 0.25, 0.5],
    }


def test_tiny_sweep_writes_figure_report_and_per_run_artefacts(tiny_sweep):
    output_dir, _results = tiny_sweep
    assert (output_dir / "dp_sweep.png").read_bytes()[:4] == b"\x89PNG"
    report = (output_dir / "dp_sweep.md").read_text()
    assert "| 0.1 |" in report and "| 0.4 |" in report and "dp_sweep.png" in report
    assert "| sigma | FID vs holdout (effnet_lite0) | IS (Baseline Real) | LPIPS | PSNR (dB) | SSIM | seeds |" in report
    assert "- LPIPS: not computed (skipped: LPIPS uses the VGG16 backbone" in report
    for seed in (0, 1, 2):
        manifest = json.loads((output_dir / f"seed_{seed}" / "split_manifest.json").read_text())
        assert manifest["seed"] == seed
        for sigma in ("0.1", "0.4"):
            run_dir = output_dir / f"seed_{seed}" / f"sigma_{sigma}"
            assert (run_dir / "checkpoint.pt").is_file() and len(list(run_dir.glob("ablated_c0_*.pt"))) == 1
            assert len(list(run_dir.glob("victim_q*.pt"))) == 1
            with np.load(run_dir / "synthetic.npz") as synthetic:
                assert synthetic["images"].shape == (200, 1, 32, 32)  # utility_per_class 20 x 10 classes
                assert np.bincount(synthetic["labels"]).tolist() == [20] * 10


def test_tiny_sweep_fid_reference_is_the_holdout_not_the_training_members(tiny_sweep):
    """Recompute seed 0's FID from its saved synthetic set: it is the FID against the seed's test split at
    matched sizes (per class the same count from each), and not the FID against the training members."""
    from medsyn.data.sources import draw_splits
    from medsyn.metrics import fid
    from medsyn.metrics.features.extract import extract_features

    output_dir, results = tiny_sweep
    splits, _manifest = draw_splits("digits", {"size": 32}, seed=0, per_class=4)
    test, train = splits["test"], splits["train"]
    entry = results["synthetic_sets"]["sigma_0.1"]
    tree = entry["per_seed"][0]
    with np.load(output_dir / "seed_0" / "sigma_0.1" / "synthetic.npz") as saved:
        images, labels = torch.from_numpy(saved["images"]), torch.from_numpy(saved["labels"])
    matched = sum(min(int((test.labels == c).sum()), int((labels == c).sum())) for c in range(10))
    assert tree["fid_reference"] == {"split": "test", "images_per_set": matched}
    assert matched > len(train)  # the holdout, not the 40 members, sets the size

    def features(x):
        return extract_features(x, "effnet_lite0", batch_size=64)

    holdout_index = torch.cat([torch.nonzero(test.labels == c).flatten()[:min(int((test.labels == c).sum()),
                               int((labels == c).sum()))] for c in range(10)])
    synthetic_index = torch.cat([torch.nonzero(labels == c).flatten()[:min(int((test.labels == c).sum()),
                                 int((labels == c).sum()))] for c in range(10)])
    expected = fid(features(test.images[holdout_index]), features(images[synthetic_index]))
    assert tree["fidelity"]["effnet_lite0"]["fid_holdout"] == pytest.approx(expected, rel=1e-4)
    against_members = fid(features(train.images), features(images[:len(train)]))
    assert abs(against_members - expected) > 1e-3 * expected


def test_holdout_fid_matches_class_by_class_and_refuses_too_few():
    from medsyn.evaluation.dp_sweep import holdout_fid, matched_holdout_indices
    from medsyn.metrics import fid

    holdout_labels = torch.tensor([0, 0, 0, 1, 1, 2])
    synthetic_labels = torch.tensor([1, 0, 1, 1, 0])
    holdout_index, synthetic_index = matched_holdout_indices(holdout_labels, synthetic_labels)
    # class 0: 2 of each, class 1: 2 of each (holdout has 2), class 2: none in synthetic
    assert holdout_index.tolist() == [0, 1, 3, 4] and synthetic_index.tolist() == [1, 4, 0, 2]
    generator = torch.Generator().manual_seed(0)
    holdout_features, synthetic_features = torch.randn(6, 3, generator=generator), torch.randn(5, 3, generator=generator)
    value, count = holdout_fid(holdout_features, holdout_labels, synthetic_features, synthetic_labels)
    assert count == 4 and value == pytest.approx(fid(holdout_features[[0, 1, 3, 4]], synthetic_features[[1, 4, 0, 2]]))
    with pytest.raises(ValueError, match="FID needs >= 2 matched holdout/synthetic images, got 1"):
        matched_holdout_indices(torch.tensor([0, 1]), torch.tensor([1, 2, 2]))


def test_default_sigma_grid_and_utility_size_are_the_papers():
    import inspect

    from medsyn.evaluation.dp_sweep import utility_multiplier
    from medsyn.training.dp_grid import PAPER_SIGMAS, PAPER_UTILITY_PER_CLASS

    assert PAPER_SIGMAS == (0.0, 0.03, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4)  # 001 §4.2
    defaults = inspect.signature(run_dp_sweep.__wrapped__ if hasattr(run_dp_sweep, "__wrapped__") else run_dp_sweep)
    assert tuple(defaults.parameters["sigmas"].default) == PAPER_SIGMAS
    assert defaults.parameters["utility_per_class"].default == PAPER_UTILITY_PER_CLASS == 100
    assert utility_multiplier(100, 10) == 10
    import yaml

    assert tuple(yaml.safe_load(SWEEP.read_text())["sigmas"]) == PAPER_SIGMAS


def test_the_generator_trains_with_delta_one_over_its_training_set():
    generator_seed = torch.Generator().manual_seed(0)
    train = ImageSet(
        torch.rand(12, 1, 8, 8, generator=generator_seed), torch.arange(12) % 3, ["a", "b", "c"], "random"
    )
    dp = dp_settings_for_sigma(0.5, 1.0, len(train))
    generator = build_generator(
        "cvae", num_classes=3, image_shape=(1, 8, 8), hidden_dims=[4], latent_dim=2, steps=2, batch_size=4, dp=dp
    )
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        generator.fit(train, Path(folder) / "checkpoint.pt", seed=0, progress=False)
    assert generator.metadata["dp"]["delta"] == 1 / 12
    assert math.isfinite(generator.metadata["dp"]["epsilon"]) and generator.metadata["dp"]["epsilon"] > 0


@pytest.mark.parametrize(
    "override, message",
    [
        ({"sigmas": [0.1, -0.2]}, "sigmas: expected finite numbers >= 0"),
        ({"sigmas": []}, "sigmas: expected a non-empty list"),
        ({"sigmas": [0.1, 0.1]}, "distinct"),
        ({"seeds": []}, "seeds: expected a non-empty list"),
        ({"model_config": {"steps": 3}}, r"model_config\.steps"),
        ({"model": "nope"}, "unknown model 'nope'"),
        ({"steps": 0}, "steps must be a positive integer"),
        ({"max_grad_norm": 0.0}, "max_grad_norm must be > 0"),
        ({"utility_per_class": 3}, r"utility_per_class \(3\) must be a multiple of per_class \(2\)"),
        ({"utility_per_class": 0}, "utility_per_class must be a positive integer, got 0"),
        ({"per_class": None}, "utility_per_class needs per_class"),
        ({"vgg16_weights": "/no/such/vgg16.pth"}, "vgg16_weights: expected the path of a VGG16 weights file"),
        ({"classifier": {"arch": "small_cnn", "epoch": 1}}, r"classifier\.epoch: unknown key; did you mean 'epochs'"),
        ({"empirical_epsilon": {"k": 3}}, r"empirical_epsilon\.samples_per_class: required key is missing"),
        ({"empirical_epsilon": {"samples_per_class": 2, "k": 5}}, "must not exceed samples_per_class"),
        ({"empirical_epsilon": {"samples_per_class": 0}}, r"empirical_epsilon\.samples_per_class: must be >= 1"),
        ({"empirical_epsilon": {"samples_per_class": 20, "query_class": -1}},
         r"empirical_epsilon\.query_class: must be >= 0"),
        ({"empirical_epsilon": {"samples_per_class": 20, "isomap_noise_sigmas": [0.1, -0.5]}},
         r"empirical_epsilon\.isomap_noise_sigmas: expected numbers > 0"),
        ({"empirical_epsilon": {"samples_per_class": 20, "isomap_per_class": 0}},
         r"empirical_epsilon\.isomap_per_class: must be >= 1"),
    ],
)
def test_bad_input_fails_before_any_work(tmp_path, override, message):
    arguments = {
        "data": {"kind": "digits", "options": {"size": 32}},
        "model": "cvae",
        "model_config": {},
        "sigmas": [0.0, 0.1],
        "seeds": [0, 1],
        "per_class": 2,
        "steps": 2,
        "batch_size": 4,
        "classifier": {"arch": "small_cnn", "epochs": 1, "batch_size": 8, "lr": 1e-3},
        "progress": False,
    }
    arguments.update(override)
    with pytest.raises(ValueError, match=message):
        run_dp_sweep(str(tmp_path / "out"), **arguments)
    assert not (tmp_path / "out").exists()
