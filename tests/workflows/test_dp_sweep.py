"""The DP sweep of paper 001 (Fig. 10): the tiny bundle end to end through `python -m monai.bundle run`,
plus unit checks of its pieces (delta = 1/n_train, aggregation against scipy, the figure, bad input)."""

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats

from medsyn.data.image_set import ImageSet
from medsyn.models.registry import build_generator
from medsyn.report.dp_sweep_figure import save_dp_sweep_figure
from medsyn.workflows.dp_sweep import (
    balanced_labels,
    render_dp_sweep_markdown,
    run_dp_sweep,
    summarise_sweep,
    sweep_dp_settings,
)

ROOT = Path(__file__).resolve().parents[2]
SWEEP = ROOT / "bundles" / "medsyn_dp_sweep" / "configs" / "sweep.yaml"
TINY = ROOT / "bundles" / "medsyn_dp_sweep" / "configs" / "tiny.yaml"


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


def test_tiny_sweep_aggregates_every_metric_over_three_seeds(tiny_sweep):
    _output_dir, results = tiny_sweep
    assert [entry["sigma"] for entry in results["by_sigma"]] == [0.1, 0.4]
    for entry in results["by_sigma"]:
        for key in ("fid", "epsilon", "empirical_epsilon", "utility"):
            metric = entry[key]
            assert metric["n_seeds"] == 3, (entry["sigma"], key)
            low, high = metric["ci90"]
            assert low <= metric["mean"] <= high and all(map(math.isfinite, (low, metric["mean"], high)))
        assert 0.0 <= entry["utility"]["mean"] <= 1.0
        assert entry["fid"]["mean"] > 0 and entry["fid"]["extractor"] == "effnet_lite0"
        assert all(run["empirical_epsilon"] >= 0 for run in results["runs"])
        # the aggregate is the mean of the per-seed runs
        per_seed = [run["fid"] for run in results["runs"] if run["sigma"] == entry["sigma"]]
        assert entry["fid"]["mean"] == pytest.approx(np.mean(per_seed), rel=1e-12)
    assert len(results["runs"]) == 6 and {run["seed"] for run in results["runs"]} == {0, 1, 2}


def test_tiny_sweep_epsilon_falls_as_sigma_rises_and_matches_the_accountant(tiny_sweep):
    _output_dir, results = tiny_sweep
    epsilons = [entry["epsilon"]["mean"] for entry in results["by_sigma"]]
    assert epsilons[0] > epsilons[1] > 0
    meta = results["metadata"]
    n_train = meta["data"]["split_sizes"]["train"]
    assert n_train == 4 * 10
    from opacus.accountants import RDPAccountant

    for entry in results["by_sigma"]:
        assert entry["epsilon"]["delta"] == 1.0 / n_train
        oracle = RDPAccountant()
        oracle.history = [(entry["sigma"], meta["batch_size"] / n_train, meta["steps"])]
        assert entry["epsilon"]["mean"] == pytest.approx(oracle.get_epsilon(delta=1.0 / n_train), rel=1e-9)
    for run in results["runs"]:
        assert run["delta"] == 1.0 / run["n_train"] and run["n_synthetic"] == run["n_train"]
    assert results["metadata"]["empirical_epsilon"] == {
        "samples_per_class": 10,
        "k": 5,
        "n_components": 2,
        "isomap_neighbors": 5,
    }


def test_tiny_sweep_writes_figure_report_and_per_run_artefacts(tiny_sweep):
    output_dir, _results = tiny_sweep
    assert (output_dir / "dp_sweep.png").read_bytes()[:4] == b"\x89PNG"
    report = (output_dir / "dp_sweep.md").read_text()
    assert "| 0.1 |" in report and "| 0.4 |" in report and "dp_sweep.png" in report
    for seed in (0, 1, 2):
        manifest = json.loads((output_dir / f"seed_{seed}" / "split_manifest.json").read_text())
        assert manifest["seed"] == seed
        for sigma in ("0.1", "0.4"):
            run_dir = output_dir / f"seed_{seed}" / f"sigma_{sigma}"
            assert (run_dir / "checkpoint.pt").is_file() and (run_dir / "ablated_checkpoint.pt").is_file()
            with np.load(run_dir / "synthetic.npz") as synthetic:
                assert synthetic["images"].shape == (40, 1, 32, 32)
                assert np.bincount(synthetic["labels"]).tolist() == [4] * 10


# --- units ---------------------------------------------------------------------------------------------------


def test_sweep_dp_settings_takes_delta_from_the_training_set_size():
    assert sweep_dp_settings(0.3, 1.5, 137) == {
        "noise_multiplier": 0.3,
        "max_grad_norm": 1.5,
        "delta": 1 / 137,
    }
    assert sweep_dp_settings(0.0, 1.0, 137) is None  # sigma 0 = plain SGD (paper 001 §3.1)
    with pytest.raises(ValueError, match="num_train"):
        sweep_dp_settings(0.3, 1.0, 1)


def test_the_generator_trains_with_delta_one_over_its_training_set():
    generator_seed = torch.Generator().manual_seed(0)
    train = ImageSet(
        torch.rand(12, 1, 8, 8, generator=generator_seed), torch.arange(12) % 3, ["a", "b", "c"], "random"
    )
    dp = sweep_dp_settings(0.5, 1.0, len(train))
    generator = build_generator(
        "cvae",
        num_classes=3,
        image_shape=(1, 8, 8),
        hidden_dims=[4],
        latent_dim=2,
        steps=2,
        batch_size=4,
        dp=dp,
    )
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        generator.fit(train, Path(folder) / "checkpoint.pt", seed=0, progress=False)
    assert generator.metadata["dp"]["delta"] == 1 / 12
    assert math.isfinite(generator.metadata["dp"]["epsilon"]) and generator.metadata["dp"]["epsilon"] > 0


def test_balanced_labels_counts_differ_by_at_most_one():
    labels = balanced_labels(3, 10)
    assert labels.dtype == torch.int64 and labels.tolist() == sorted(labels.tolist())
    assert torch.bincount(labels).tolist() == [4, 3, 3]
    assert torch.bincount(balanced_labels(10, 40)).tolist() == [4] * 10
    with pytest.raises(ValueError):
        balanced_labels(0, 5)


def _runs():
    fids = {0.0: [10.0, 12.0, 17.0], 0.2: [30.0, 30.0, 30.0]}
    utilities = {0.0: [0.5, 0.6, 0.4], 0.2: [0.2, 0.1, 0.3]}
    return [
        {
            "sigma": sigma,
            "seed": seed,
            "fid": fids[sigma][seed],
            "utility": utilities[sigma][seed],
            "epsilon": None if sigma == 0 else 8.0,
            "delta": None if sigma == 0 else 0.01,
        }
        for sigma in (0.0, 0.2)
        for seed in range(3)
    ]


def test_summarise_sweep_matches_scipy_t_interval_and_nulls_unbounded_epsilon():
    summary = summarise_sweep([0.0, 0.2], _runs(), extractor="effnet_lite0")
    assert [entry["sigma"] for entry in summary] == [0.0, 0.2]
    values = np.array([10.0, 12.0, 17.0])
    low, high = stats.t.interval(0.9, df=2, loc=values.mean(), scale=stats.sem(values))
    assert summary[0]["fid"]["mean"] == pytest.approx(13.0)
    assert summary[0]["fid"]["ci90"] == pytest.approx([low, high], rel=1e-9)
    assert summary[0]["epsilon"] is None  # sigma 0: no privacy
    # identical values (ties): a zero-width interval, not NaN
    assert summary[1]["fid"]["ci90"] == pytest.approx([30.0, 30.0])
    assert summary[1]["epsilon"]["mean"] == 8.0 and summary[1]["epsilon"]["delta"] == 0.01
    assert summary[1]["utility"]["n_seeds"] == 3
    with pytest.raises(ValueError, match="no runs for sigma 0.3"):
        summarise_sweep([0.3], _runs(), extractor="effnet_lite0")


def test_summarise_sweep_aggregates_empirical_epsilon_when_every_run_has_it():
    runs = [{**run, "empirical_epsilon": 0.1 * (run["seed"] + 1)} for run in _runs()]
    summary = summarise_sweep([0.0, 0.2], runs, extractor="effnet_lite0")
    assert summary[0]["empirical_epsilon"]["mean"] == pytest.approx(0.2)  # finite at sigma 0 too
    assert summary[0]["empirical_epsilon"]["n_seeds"] == 3
    assert "empirical_epsilon" not in summarise_sweep([0.0], _runs(), extractor="effnet_lite0")[0]


def test_figure_and_markdown_handle_the_no_privacy_point(tmp_path):
    summary = summarise_sweep([0.0, 0.2], _runs(), extractor="effnet_lite0")
    path = save_dp_sweep_figure(
        tmp_path / "f.png",
        [0.0, 0.2],
        {key: [entry[key] for entry in summary] for key in ("fid", "epsilon", "utility")},
    )
    assert path.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="2 sigmas"):
        save_dp_sweep_figure(
            tmp_path / "g.png", [0.0, 0.2], {"fid": [None], "epsilon": [None], "utility": [None]}
        )
    results = {
        "by_sigma": summary,
        "metadata": {
            "model": "cvae",
            "data": {"kind": "digits", "source": "s", "split_sizes": {"train": 100}},
            "per_class": 10,
            "seeds": [0, 1, 2],
            "steps": 5,
            "batch_size": 4,
            "max_grad_norm": 1.0,
            "extractor": "effnet_lite0",
            "notes": ["n"],
        },
    }
    report = render_dp_sweep_markdown(results)
    assert "| 0 | 13.00 [" in report and "inf (no privacy)" in report and "| 0.2 |" in report


@pytest.mark.parametrize(
    "override, message",
    [
        ({"sigmas": [0.1, -0.2]}, "sigmas must be finite numbers >= 0"),
        ({"sigmas": []}, "sigmas must be a non-empty list"),
        ({"sigmas": [0.1, 0.1]}, "distinct"),
        ({"seeds": []}, "seeds must be a non-empty list"),
        ({"model_config": {"steps": 3}}, r"model_config must hold model keys only; \['steps'\]"),
        ({"model": "nope"}, "unknown model 'nope'"),
        ({"steps": 0}, "steps must be a positive integer"),
        ({"max_grad_norm": 0.0}, "max_grad_norm must be > 0"),
        ({"classifier": {"arch": "small_cnn", "epoch": 1}}, r"classifier\.epoch: unknown key; did you mean 'epochs'"),
        ({"empirical_epsilon": {"k": 3}}, r"empirical_epsilon\.samples_per_class: required key is missing"),
        ({"empirical_epsilon": {"samples_per_class": 2, "k": 5}}, "must not exceed samples_per_class"),
        ({"empirical_epsilon": {"samples_per_class": 0}}, r"empirical_epsilon\.samples_per_class: must be >= 1"),
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
