"""Refuse top-level keys a bundle does not use: the check every medsyn bundle runs in ``initialize``.

    initialize:
      - _target_: medsyn.config.bundle.check_top_level_keys

Why this is needed: ``python -m monai.bundle run --config_file train.yaml --batch_szie 8`` ADDS a top-level
key ``batch_szie`` to the config. Nothing references it, so the workflow function, which only receives the
keys its component references (``batch_size: "@batch_size"``), never sees the typo and trains with the
default. Nested typos (``--privacy#qq 5``) do reach the function (inside ``privacy``) and are refused there
by ``medsyn.config.strict``; a top-level one must be caught where the whole config is visible.

How: the check needs the parsed config, i.e. the ``monai.bundle.ConfigParser`` of the running workflow.
The options weighed (MONAI 1.6, ``monai/bundle/scripts.py::run``, ``workflows.py::ConfigWorkflow``):

- A ``ConfigWorkflow`` subclass would own the parser, but ``run`` only uses one when the user passes
  ``--workflow_name``; the documented commands would stay unchecked.
- A reference to the root config (``"@"``) resolves, i.e. instantiates, every component, the training
  included; a root macro (``"%"``) copies the raw config with its ``_target_``s, which are then parsed and
  instantiated as well.
- Re-reading ``sys.argv`` and the config files would re-implement fire's and MONAI's parsing (and miss
  ``monai.bundle.run(...)`` called from Python).
- Chosen: an ``initialize`` item (``ConfigWorkflow.initialize`` evaluates it right after parsing, before
  ``run``) whose function finds the ``ConfigParser`` that is instantiating it on the call stack and reads
  its merged config (files + command-line overrides). It reads keys only and instantiates nothing. If MONAI
  ever stops calling components from a ``ConfigParser`` method, the check fails loudly instead of passing.

A top-level key is valid when some item of the config references it (``"@key"``, also inside ``"$..."``
expressions, found with MONAI's own ``ReferenceResolver.match_refs_pattern``) or when it is one of MONAI's
own ids (``_meta_``, ``run``, ``initialize``, ``finalize``, ``imports``). So a bundle's valid keys are
exactly the ones its YAML wires into the workflow call; nothing is listed twice.

``--tracking mlflow`` (MONAI's switch, ``ConfigWorkflow.patch_bundle_tracking``) adds MONAI's tracking
settings as top-level keys (``medsyn.config.tracking.MONAI_TRACKING_KEYS``) and has already written the executed
config to ``<output_dir>/config_<time>.json``. The check first wires them into the bundle's ``tracking``
section (``apply_monai_tracking``: ``tracking.backend`` becomes "mlflow", each key a reference), so they are
used, not ignored; a bundle whose ``run`` takes no ``tracking`` section refuses ``--tracking``.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping
from typing import Any

from medsyn.config.strict import ConfigError, unknown_key_message
from medsyn.config.tracking import MONAI_TRACKING_KEYS

__all__ = ["MONAI_IDS", "apply_monai_tracking", "check_config_keys", "check_top_level_keys", "referenced_top_level_ids"]

# ids MONAI's ConfigWorkflow itself reads (metadata, the run / initialize / finalize expressions, imports)
MONAI_IDS = ("_meta_", "run", "initialize", "finalize", "imports")


def referenced_top_level_ids(config: Any) -> set[str]:
    """The top-level ids referenced anywhere in ``config`` (``"@data#options"`` -> ``data``)."""
    from monai.bundle.reference_resolver import ReferenceResolver

    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, Mapping):
            for item in value.values():
                walk(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(item)
        elif isinstance(value, str):
            for reference in ReferenceResolver.match_refs_pattern(value):
                found.add(reference.replace("::", "#").split("#", 1)[0])

    walk(config)
    return found


def check_config_keys(config: Mapping[str, Any]) -> None:
    """ConfigError naming the first top-level key of ``config`` that nothing references, with the closest
    valid key (``batch_szie: unknown key; did you mean 'batch_size'?``)."""
    referenced = referenced_top_level_ids(config)
    valid = [key for key in config if key in referenced or key in MONAI_IDS]
    suggestions = [key for key in valid if not key.startswith("_")]
    for key in config:
        if key not in valid:
            raise ConfigError(unknown_key_message("", key, suggestions))


# MONAI sets save_execute_config to "<raw output_dir> + '/config_%Y%m%d_%H%M%S.json'" (an expression only when
# output_dir is one); the file name is read from it and the path rebuilt from the parsed output_dir.
_EXECUTED_CONFIG_NAME = re.compile(r"'/(config_\d{8}_\d{6}\.json)'$")


def apply_monai_tracking(parser: Any) -> bool:
    """Wire the top-level keys ``--tracking mlflow`` added into the ``tracking`` section; True if it did.

    MONAI's patch always sets ``save_execute_config`` (a path, or None with ``--save_execute_config false``):
    without it the keys did not come from ``--tracking`` and stay for ``check_config_keys`` to judge.
    """
    config = parser.get()
    if "save_execute_config" not in config:
        return False
    present = [key for key in MONAI_TRACKING_KEYS if key in config]
    if "tracking" not in referenced_top_level_ids(config):
        raise ConfigError(
            f"--tracking: this bundle's run takes no tracking section, so its settings ({', '.join(present)}) "
            "would be ignored; the quickstart, assessment and DP-sweep bundles log to MLflow"
        )
    section = config.get("tracking")
    if section is not None and not isinstance(section, Mapping):
        raise ConfigError(f"tracking: expected a mapping (the tracking section), got {type(section).__name__}")
    executed = config["save_execute_config"]
    if isinstance(executed, str):
        match = _EXECUTED_CONFIG_NAME.search(executed)
        if match is None:
            raise RuntimeError(
                f"save_execute_config {executed!r}: not the form MONAI's --tracking writes "
                "(<output_dir> + '/config_<time>.json'); medsyn cannot tell which file MONAI wrote"
            )
        parser["save_execute_config"] = f"$@output_dir + '/{match.group(1)}'"
    wired = {**dict(section or {}), "backend": "mlflow"}
    wired.update({field: f"@{key}" for key, field in MONAI_TRACKING_KEYS.items() if key in config})
    parser["tracking"] = wired
    return True


def _running_config_parser() -> Any:
    from monai.bundle import ConfigParser

    frame = inspect.currentframe()
    try:
        while frame is not None:
            candidate = frame.f_locals.get("self")
            if isinstance(candidate, ConfigParser):
                return candidate
            frame = frame.f_back
    finally:
        del frame
    raise RuntimeError(
        "medsyn.config.bundle.check_top_level_keys must be instantiated by a monai.bundle ConfigParser "
        "(list it under `initialize` in a bundle config); no parser was found on the call stack"
    )


def check_top_level_keys() -> None:
    """The ``initialize`` item of every medsyn bundle: wire ``--tracking`` settings into the ``tracking``
    section (``apply_monai_tracking``), then refuse a top-level key no item references."""
    parser = _running_config_parser()
    apply_monai_tracking(parser)
    config = parser.get()
    if not isinstance(config, Mapping):
        raise ConfigError(f"the bundle config must be a mapping at the top level, got {type(config).__name__}")
    check_config_keys(config)
