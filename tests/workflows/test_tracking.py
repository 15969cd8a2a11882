"""Experiment tracking (medsyn.config.tracking, medsyn.workflows.tracking): a tiny tracked quickstart read
back from its MLflow store; MONAI's ``--tracking mlflow`` wired into the tracking section; no mlflow import
when tracking is off."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from medsyn.config.bundle import apply_monai_tracking, check_config_keys
from medsyn.config.strict import ConfigError, parse_section
from medsyn.config.tracking import TrackingSection

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "bundles" / "medsyn_quickstart" / "configs"
STEPS = 12

TINY_RUN = {
    "data": {"kind": "digits", "options": {"size": 32}, "per_class": 6},
    "models": {"cvae": {"config": {"hidden_dims": [8, 16], "latent_dim": 8, "steps": STEPS, "batch_size": 16}}},
    "seed": 0,
    "feature_batch_size": 32,
    "speed": {"count": 4, "warmup": 0, "repeats": 1},
    "classifier": {"arch": "small_cnn", "epochs": 1, "batch_size": 16, "lr": 1e-3},
    "robustness_steps": 2,
    "privacy": {"q": 4, "repeats": 2},
    "progress": False,
}


@pytest.fixture(scope="module")
def tracked_run(tmp_path_factory):
    from medsyn.workflows.quickstart import run_quickstart

    output_dir = tmp_path_factory.mktemp("tracked")
    run_quickstart(str(output_dir), **TINY_RUN, tracking={"backend": "mlflow", "experiment_name": "tiny"})
    return output_dir


def test_tracked_run_reads_back_params_metrics_losses_and_artifacts(tracked_run):
    import mlflow
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tracked_run / 'mlruns.db'}"  # the default store: MONAI's, inside output_dir
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(experiment_names=["tiny"])
    assert len(runs) == 1 and runs.loc[0, "status"] == "FINISHED"
    row = runs.loc[0]
    assert row["params.classifier.epochs"] == "1"
    assert row["params.models.cvae.config.steps"] == str(STEPS)
    assert row["params.data.per_class"] == "6" and row["params.workflow"] == "quickstart"

    results = json.loads((tracked_run / "results.json").read_text())
    cvae = results["synthetic_sets"]["cvae"]
    seed0 = cvae["per_seed"][0]
    accuracy = seed0["utility"]["data_anonymization"]["1x"]["accuracy"]
    assert row["metrics.cvae/utility/data_anonymization/1x/accuracy"] == pytest.approx(accuracy)
    assert row["metrics.cvae/fidelity/effnet_lite0/precision/mean"] == pytest.approx(
        cvae["fidelity"]["effnet_lite0"]["precision"]["mean"])

    client = MlflowClient(tracking_uri=uri)
    run_id = row["run_id"]
    loss_keys = [key for key in client.get_run(run_id).data.metrics if key.startswith("train/cvae/seed0/")]
    assert loss_keys, "no generator training loss was logged"
    history = client.get_metric_history(run_id, loss_keys[0])
    assert sorted(point.step for point in history) == list(range(STEPS))  # one value per training step

    artifacts = {item.path for item in client.list_artifacts(run_id)}
    assert {"results.json", "results.csv", "report.md", "report.html", "figures", "split_manifest.json"} <= artifacts
    assert any(item.path.endswith(".png") for item in client.list_artifacts(run_id, "figures"))
    logged = Path(client.download_artifacts(run_id, "results.json", str(tracked_run.parent / "download")))
    assert json.loads(logged.read_text()) == results
    # the store lives in the claimed output folder, recorded as the run's own entries
    ownership = json.loads((tracked_run / ".medsyn-outputs.json").read_text())
    assert {"mlruns.db", "mlruns"} <= set(ownership["entries"])


def test_tracking_section_refuses_an_unknown_backend():
    with pytest.raises(ConfigError, match="tracking.backend"):
        parse_section(TrackingSection, {"backend": "wandb"}, path="tracking")
    with pytest.raises(ConfigError, match="tracking.experiment_nam"):
        parse_section(TrackingSection, {"experiment_nam": "x"}, path="tracking")


def _patched_parser(config_file: Path, output_dir: Path):
    """A parser as ``monai.bundle run --tracking mlflow`` leaves it before ``initialize``."""
    from monai.bundle import ConfigWorkflow

    workflow = ConfigWorkflow(config_file=str(config_file), meta_file=str(config_file.parent / "metadata.json"),
                              tracking="mlflow", workflow_type=None, output_dir=str(output_dir))
    return workflow.parser


def test_monai_tracking_keys_are_wired_into_the_tracking_section(tmp_path):
    output_dir = tmp_path / "run"
    parser = _patched_parser(QUICKSTART / "quickstart.yaml", output_dir)
    with pytest.raises(ConfigError, match="tracking_uri: unknown key"):
        check_config_keys(parser.get())  # without the wiring MONAI's keys would be unused
    assert apply_monai_tracking(parser)
    check_config_keys(parser.get())
    tracking = parser.get_parsed_content("tracking")
    assert tracking["backend"] == "mlflow" and tracking["experiment_name"] == "monai_experiment"
    assert tracking["tracking_uri"] == f"sqlite:///{output_dir.absolute()}/mlruns.db"
    assert tracking["is_not_rank0"] is False
    executed = Path(tracking["executed_config"])
    assert executed.parent == output_dir and executed.is_file()  # the file MONAI wrote, adopted by the run


def test_bundle_run_with_monai_tracking_flag_logs_the_run(tmp_path):
    """``monai.bundle run --tracking mlflow`` end to end (in-process, tiny overrides)."""
    import mlflow
    from monai.bundle import run

    output_dir = tmp_path / "run"
    overrides = {key: value for key, value in TINY_RUN.items() if key != "seed"}
    run(config_file=str(QUICKSTART / "quickstart.yaml"), meta_file=str(QUICKSTART / "metadata.json"),
        tracking="mlflow", output_dir=str(output_dir), run_name="from-cli", **overrides)
    mlflow.set_tracking_uri(f"sqlite:///{output_dir}/mlruns.db")
    runs = mlflow.search_runs(experiment_names=["monai_experiment"])
    assert list(runs["tags.mlflow.runName"]) == ["from-cli"]
    client = mlflow.tracking.MlflowClient()
    logged = [item.path for item in client.list_artifacts(runs.loc[0, "run_id"], "bundle_config")]
    assert len(logged) == 1 and Path(logged[0]).name.startswith("config_")
    ownership = json.loads((output_dir / ".medsyn-outputs.json").read_text())
    assert Path(logged[0]).name in ownership["entries"]  # MONAI's executed config, adopted by the run


def test_tracking_on_a_bundle_without_a_tracking_section_is_refused(tmp_path):
    parser = _patched_parser(ROOT / "bundles" / "medsyn_cvae" / "configs" / "train.yaml", tmp_path / "run")
    with pytest.raises(ConfigError, match="takes no tracking section"):
        apply_monai_tracking(parser)


def test_without_tracking_no_keys_are_wired_and_mlflow_is_not_imported(tmp_path):
    script = f"""
import sys
from medsyn.workflows.quickstart import run_quickstart
run_quickstart({str(tmp_path / 'run')!r}, **{TINY_RUN!r})
assert "mlflow" not in sys.modules, "mlflow imported by a run with tracking off"
assert not any(path.name.startswith("mlruns") for path in __import__("pathlib").Path({str(tmp_path / 'run')!r}).iterdir())
print("untracked ok")
"""
    completed = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=600,
                               env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-4000:]
    assert "untracked ok" in completed.stdout


def test_tracked_dp_sweep_logs_each_sigma_and_its_training_losses(tmp_path):
    """The DP sweep's generators lie under seed_<k>/sigma_<s>/: their losses are found there."""
    import mlflow

    from medsyn.workflows.dp_sweep import run_dp_sweep

    output_dir = tmp_path / "sweep"
    run_dp_sweep(str(output_dir), data={"kind": "digits", "options": {"size": 32}}, model="cvae",
                 model_config={"hidden_dims": [8, 16], "latent_dim": 8}, sigmas=[0.0, 0.5], seeds=[0], per_class=4,
                 steps=6, batch_size=8, utility_per_class=8, empirical_epsilon=None, progress=False,
                 classifier={"arch": "small_cnn", "epochs": 1, "batch_size": 8, "lr": 1e-3},
                 tracking={"backend": "mlflow", "tracking_uri": f"sqlite:///{tmp_path / 'store.db'}"})
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'store.db'}")
    row = mlflow.search_runs(experiment_names=["medsyn"]).loc[0]
    assert row["params.workflow"] == "dp_sweep" and row["params.sigmas"] == "[0.0, 0.5]"
    client = mlflow.tracking.MlflowClient()
    for sigma in ("sigma_0", "sigma_0.5"):
        assert [point.step for point in client.get_metric_history(row["run_id"], f"train/{sigma}/seed0/loss")] == list(range(6))
    assert not (output_dir / "mlruns.db").exists() and (tmp_path / "mlruns").is_dir()  # artifacts beside the db
    assert "dp_sweep.md" in {item.path for item in client.list_artifacts(row["run_id"])}
