"""[tracking]: log a run to an experiment tracker (MLflow), off by default.

Two ways to switch it on, both ending in this one section of the workflow's arguments:

- the bundle config: ``tracking: {backend: mlflow}`` (or ``--tracking#backend mlflow`` on the command line);
- MONAI's own switch: ``python -m monai.bundle run ... --tracking mlflow``. MONAI then adds its tracking
  settings as top-level config keys (``tracking_uri``, ``experiment_name``, ``run_name``,
  ``save_execute_config``, ``is_not_rank0``; ``monai.bundle.utils.DEFAULT_MLFLOW_SETTINGS``), which
  ``medsyn.config.bundle.check_top_level_keys`` wires into this section (``MONAI_TRACKING_KEYS``); a command-line
  ``--tracking_uri ...`` overrides MONAI's default as it would for a MONAI bundle.

The defaults are MONAI's: a local SQLite store ``<output_dir>/mlruns.db`` with the run artifacts under
``<output_dir>/mlruns`` (MLflow 3 refuses its old file store unless told otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass

from medsyn.config.strict import ConfigError

__all__ = ["MONAI_TRACKING_KEYS", "TRACKING_BACKENDS", "TrackingSection"]

TRACKING_BACKENDS = ("mlflow",)

# MONAI's top-level tracking keys (DEFAULT_MLFLOW_SETTINGS["configs"] minus its engine handlers) -> the field
# of TrackingSection that receives each; save_execute_config is the file MONAI wrote the executed config to.
MONAI_TRACKING_KEYS = {
    "tracking_uri": "tracking_uri",
    "experiment_name": "experiment_name",
    "run_name": "run_name",
    "save_execute_config": "executed_config",
    "is_not_rank0": "is_not_rank0",
}


@dataclass(frozen=True)
class TrackingSection:
    """backend: None (off) or "mlflow". tracking_uri: None = ``sqlite:///<output_dir>/mlruns.db`` (MONAI's
    default), else any MLflow tracking URI (``sqlite:///...``, ``http://server:5000``, ``file:///...``).
    experiment_name, run_name (None: MLflow picks one). executed_config: a file of the executed bundle
    config to log as an artifact (``--tracking mlflow`` sets it to the one MONAI wrote into output_dir).
    is_not_rank0: log nothing from this process (MONAI's flag for ranks > 0 under torch.distributed)."""

    backend: str | None = None
    tracking_uri: str | None = None
    experiment_name: str = "medsyn"
    run_name: str | None = None
    executed_config: str | None = None
    is_not_rank0: bool = False

    def __post_init__(self) -> None:
        if self.backend is not None and self.backend not in TRACKING_BACKENDS:
            raise ConfigError(f"backend: expected null (off) or one of {list(TRACKING_BACKENDS)}, got {self.backend!r}")
        if not self.experiment_name:
            raise ConfigError("experiment_name: must not be empty")
