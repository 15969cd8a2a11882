"""Generator overrides inside other configs (model_config, synthetic_sets.<name>.config, models.<name>.config):
checked against the model's config dataclass (``medsyn.models.*Config``) and ``TrainingSettings``."""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from typing import Any

from medsyn.config.strict import ConfigError, check_known_keys, coerce_value, join_path, parse_section

__all__ = ["parse_generator_overrides"]


def parse_generator_overrides(
    model: str, overrides: Mapping[str, Any] | None, *, path: str, training_keys: bool = True
) -> dict[str, Any]:
    """Flat overrides of ``build_generator(model, ...)`` (model-config keys, plus training keys unless
    ``training_keys`` is False) checked by key and type; an unknown key names the closest valid key.
    The training keys are range-checked by ``TrainingSettings`` (``<path>.num_workers: must be an integer
    >= 0, got -1``). Returns the overrides (lists of tuple fields become tuples, ints of float fields floats)."""
    from medsyn.models.registry import generator_class
    from medsyn.training.settings import TRAINING_KEYS, TrainingSettings

    try:
        cls = generator_class(model)
    except ValueError as error:
        raise ConfigError(f"{join_path(path.rpartition('.')[0], 'model')}: {error}") from error
    if overrides is None:
        return {}
    if not isinstance(overrides, Mapping):
        raise ConfigError(f"{path}: expected a mapping, got {type(overrides).__name__}")
    config_class = cls.config_class
    model_keys = [f.name for f in dataclasses.fields(config_class)]
    extra = ["preset"] if model == "stylegan2" else []  # a named starting point (STYLEGAN2_PRESETS)
    check_known_keys(overrides, model_keys + extra + (list(TRAINING_KEYS) if training_keys else []), path)
    hints = {**typing.get_type_hints(config_class), **typing.get_type_hints(TrainingSettings)}
    parsed = {key: value if key in extra else coerce_value(value, hints[key], join_path(path, key))
              for key, value in overrides.items()}
    if training_keys:
        parse_section(TrainingSettings, {key: parsed[key] for key in parsed if key in TRAINING_KEYS}, path=path)
    return parsed
