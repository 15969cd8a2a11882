"""Log a finished run to MLflow: the one place medsyn talks to an experiment tracker (config:
``medsyn.config.tracking``). ``mlflow`` is imported inside ``log_run`` only, so a run with tracking off loads
no tracking package.

One MLflow run per workflow call, with:

- params: the workflow's config sections flattened to dotted keys (``classifier.epochs``), plus
  ``workflow`` and ``seeds``; lists are written as JSON;
- metrics per seed: every number of ``per_seed`` of every synthetic set (results schema 2,
  ``medsyn.report.results``) as ``<set>/<key path>`` at step = the seed, and the aggregate over seeds as
  ``<set>/<key path>/mean``, ``.../ci90_low``, ``.../ci90_high``;
- generator training losses per step: the loss history every generator checkpoint holds
  (``medsyn.training.loop.run_training`` records one dict of losses per step) as
  ``train/<set>/seed<k>/<loss>`` at step = the training step (``checkpoint_of`` says where the checkpoint of
  a (set, seed) lies: ``models/<set>/seed<k>/`` in the assessment, ``seed_<k>/sigma_<s>/`` in the DP sweep);
- artifacts: those of ``ARTIFACT_NAMES`` the run wrote and the executed bundle config when MONAI wrote one
  (``--tracking mlflow``).

The default store is MONAI's: ``sqlite:///<output_dir>/mlruns.db`` with artifacts in ``<output_dir>/mlruns``
(both recorded as entries of the claimed output folder before MLflow creates them).
"""

from __future__ import annotations

import importlib.util
import json
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from medsyn.io.output_folder import record_write

__all__ = [
    "ARTIFACT_NAMES",
    "adopted_config_names",
    "assessment_checkpoint",
    "check_tracking",
    "default_tracking_uri",
    "flatten_params",
    "log_run",
    "loss_metrics",
    "seed_metrics",
    "tracking_enabled",
]

# What a finished assessment or quickstart leaves in output_dir that the run's record should hold.
ARTIFACT_NAMES = ("results.json", "results.csv", "report.md", "report.html", "figures", "split_manifest.json",
                  "dp_sweep.md", "dp_sweep.png")
CheckpointOf = Callable[[str, Mapping[str, Any], int], Path]  # (set name, set entry, seed) -> checkpoint.pt
_DEFAULT_DB = "mlruns.db"
_DEFAULT_ARTIFACTS = "mlruns"
_BATCH = 1000  # MLflow's limit of metrics per log_batch call


def tracking_enabled(tracking: Mapping[str, Any] | None) -> bool:
    """True when ``tracking`` (a parsed TrackingSection dict) asks this process to log."""
    return bool(tracking) and tracking["backend"] is not None and not tracking["is_not_rank0"]


def check_tracking(tracking: Mapping[str, Any] | None) -> None:
    """ImportError before any work when tracking is on and the mlflow package is missing (found without
    importing it)."""
    if tracking_enabled(tracking) and importlib.util.find_spec("mlflow") is None:
        raise ImportError("tracking.backend mlflow: the mlflow package is not installed (it is in requirements.lock: "
                          "run `make install`, or `pip install mlflow-skinny`)")


def adopted_config_names(arguments: Mapping[str, Any]) -> list[str]:
    """For ``writes_output_folder(adopt=...)``: the executed config MONAI wrote into output_dir under
    ``--tracking`` (a file this run logs), by name; nothing when tracking is off or the file lies elsewhere."""
    tracking = arguments.get("tracking") or {}
    executed = tracking.get("executed_config")
    if not executed:
        return []
    path, folder = Path(executed).absolute(), Path(arguments["output_dir"]).absolute()
    return [path.name] if path.parent == folder else []


def default_tracking_uri(output_dir: Path) -> str:
    """MONAI's default: a SQLite database in output_dir (``monai.utils.path_to_sqlite_uri``)."""
    from monai.utils import path_to_sqlite_uri

    return path_to_sqlite_uri(Path(output_dir) / _DEFAULT_DB)


def _sqlite_file(uri: str) -> Path | None:
    parsed = urlparse(uri)
    if parsed.scheme != "sqlite" or not parsed.path or parsed.path == "/:memory:":
        return None
    return Path(unquote(parsed.path[1:] if parsed.path.startswith("//") else parsed.path))


def flatten_params(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"classifier": {"epochs": 8}, "seeds": [0, 1]}`` -> ``{"classifier.epochs": "8", "seeds": "[0, 1]"}``."""
    params: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            params.update(flatten_params(value, name))
        elif isinstance(value, str):
            params[name] = value
        else:
            params[name] = json.dumps(value, default=str)
    return params


def _numbers(tree: Any, path: str) -> Iterator[tuple[str, float]]:
    if isinstance(tree, Mapping):
        for key, value in tree.items():
            yield from _numbers(value, f"{path}/{key}" if path else str(key))
    elif isinstance(tree, (int, float)) and not isinstance(tree, bool):
        yield path, float(tree)


def _statistics(tree: Any, path: str) -> Iterator[tuple[str, float]]:
    """The statistics S = {"mean", "ci90", "n_seeds"} of a set entry as (path/mean, ...) pairs."""
    if not isinstance(tree, Mapping):
        return
    if "mean" in tree and "ci90" in tree:
        yield f"{path}/mean", float(tree["mean"])
        yield f"{path}/ci90_low", float(tree["ci90"][0])
        yield f"{path}/ci90_high", float(tree["ci90"][1])
        return
    for key, value in tree.items():
        yield from _statistics(value, f"{path}/{key}")


def seed_metrics(results: Mapping[str, Any]) -> list[tuple[str, float, int]]:
    """(key, value, step) of every per-seed number (step = the seed; the bookkeeping key ``seed`` left out) and
    of every aggregate statistic (step 0) of every synthetic set."""
    metrics: list[tuple[str, float, int]] = []
    seeds = results["metadata"]["seeds"]
    for name, entry in results["synthetic_sets"].items():
        for index, tree in enumerate(entry.get("per_seed", [])):  # in the order of metadata.seeds
            seed = int(tree.get("seed", seeds[index]))
            metrics.extend((key, value, seed) for key, value in _numbers(tree, name) if key != f"{name}/seed")
        for section, tree in entry.items():
            if section not in ("per_seed", "not_computed", "kind", "model", "dp"):
                metrics.extend((key, value, 0) for key, value in _statistics(tree, f"{name}/{section}"))
    return metrics


def assessment_checkpoint(output_dir: Path) -> CheckpointOf:
    """The assessment's and quickstart's layout: ``<output_dir>/models/<set>/seed<k>/checkpoint.pt``."""
    from medsyn.evaluation.seed_loop import run_dir_of

    return lambda name, entry, seed: run_dir_of(Path(output_dir), name, seed) / "checkpoint.pt"


def loss_metrics(results: Mapping[str, Any], checkpoint_of: CheckpointOf) -> list[tuple[str, float, int]]:
    """(``train/<set>/seed<k>/<loss>``, value, step) from the loss history of each generator checkpoint the
    run trained (``checkpoint_of(set name, set entry, seed)``)."""
    from medsyn.training.checkpoint import load_checkpoint

    metrics: list[tuple[str, float, int]] = []
    for name, entry in results["synthetic_sets"].items():
        if entry.get("kind") != "generator":
            continue
        for seed in results["metadata"]["seeds"]:
            checkpoint = checkpoint_of(name, entry, seed)
            if not checkpoint.is_file():
                raise FileNotFoundError(f"tracking: generator set {name!r} seed {seed} has no checkpoint {checkpoint}")
            for step, losses in enumerate(load_checkpoint(checkpoint).get("history", [])):
                metrics.extend((f"train/{name}/seed{seed}/{loss}", float(value), step) for loss, value in losses.items())
    return metrics


def log_run(tracking: Mapping[str, Any], output_dir: Path, *, config: Mapping[str, Any],
            results: Mapping[str, Any], checkpoint_of: CheckpointOf | None = None) -> str | None:
    """Log the finished run (module doc) when ``tracking_enabled``; return the MLflow run id (None if off).
    checkpoint_of: where each generator checkpoint lies (default ``assessment_checkpoint(output_dir)``)."""
    if not tracking_enabled(tracking):
        return None
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    output_dir = Path(output_dir)
    uri = tracking["tracking_uri"] or default_tracking_uri(output_dir)
    database = _sqlite_file(uri)
    artifact_location = None
    if database is not None:  # artifacts next to the database, as MONAI keeps them (not in the cwd)
        artifact_root = database.parent / _DEFAULT_ARTIFACTS
        artifact_location = artifact_root.absolute().as_uri()
        record_write(database)  # inside output_dir (the default): entries of the claimed folder
        record_write(artifact_root / "_")
        database.parent.mkdir(parents=True, exist_ok=True)
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(tracking["experiment_name"])
    experiment_id = (experiment.experiment_id if experiment is not None else
                     client.create_experiment(tracking["experiment_name"], artifact_location=artifact_location))
    run = client.create_run(experiment_id, run_name=tracking["run_name"],
                            tags={"medsyn.workflow": str(results["workflow"]), "medsyn.output_dir": str(output_dir.absolute())})
    run_id = run.info.run_id
    status = "FAILED"
    try:
        params = {"workflow": str(results["workflow"]), "seeds": json.dumps(list(results["metadata"]["seeds"])),
                  **flatten_params(config)}
        for start in range(0, len(params), 100):  # MLflow's limit of params per batch
            client.log_batch(run_id, params=[Param(key, value) for key, value in list(params.items())[start:start + 100]])
        now = int(time.time() * 1000)
        metrics = [Metric(key, value, now, step)
                   for key, value, step in seed_metrics(results)
                   + loss_metrics(results, checkpoint_of or assessment_checkpoint(output_dir))]
        for start in range(0, len(metrics), _BATCH):
            client.log_batch(run_id, metrics=metrics[start:start + _BATCH])
        for path in (output_dir / name for name in ARTIFACT_NAMES):
            if path.is_dir():
                client.log_artifacts(run_id, str(path), artifact_path=path.name)
            elif path.is_file():
                client.log_artifact(run_id, str(path))
        if tracking["executed_config"]:
            client.log_artifact(run_id, str(tracking["executed_config"]), artifact_path="bundle_config")
        status = "FINISHED"
    finally:
        client.set_terminated(run_id, status=status)
    print(f"medsyn: MLflow run {run_id} logged to {uri} (experiment {tracking['experiment_name']!r})")
    return run_id
