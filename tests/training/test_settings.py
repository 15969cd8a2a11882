"""Training settings and strict config parsing shared by every generator."""

from dataclasses import dataclass

import pytest

from medsyn.training.settings import (
    DPSettings,
    TrainingSettings,
    config_from_mapping,
    config_to_dict,
    generator_checkpoint_config,
    split_training_keys,
)


@dataclass(frozen=True)
class _Config:
    width: int = 3
    dims: tuple[int, ...] = (1, 2)


def test_unknown_and_missing_keys_are_named():
    with pytest.raises(ValueError, match=r"^demo\.widht: unknown key; did you mean 'width'\?$"):
        config_from_mapping(_Config, {"widht": 4}, what="demo")
    with pytest.raises(ValueError, match=r"^demo\.dims: expected a list, got 3$"):
        config_from_mapping(_Config, {"dims": 3}, what="demo")
    with pytest.raises(ValueError, match=r"^dp\.noise_multiplier: required key is missing$"):
        config_from_mapping(DPSettings, {}, what="dp")  # noise_multiplier is required
    assert config_from_mapping(_Config, None, what="demo") == _Config()


@pytest.mark.parametrize(
    "settings, key",
    [
        ({"steps": -1}, "steps"),
        ({"batch_size": 0}, "batch_size"),
        ({"checkpoint_every": 1.5}, "checkpoint_every"),
        ({"dp": {"noise_multiplier": -0.1}}, "noise_multiplier"),
        ({"dp": {"noise_multiplier": 1.0, "max_grad_norm": 0}}, "max_grad_norm"),
        ({"dp": {"noise_multiplier": 1.0, "delta": 1.0}}, "delta"),
        ({"dp": {"noise_multiplier": float("nan")}}, "noise_multiplier"),
        ({"dp": {"sigma": 1.0}}, "sigma"),
        ({"dp": 3}, "dp"),
        ({"device": ""}, "device"),
    ],
)
def test_bad_training_settings_name_the_key(settings, key):
    with pytest.raises(ValueError, match=key):
        config_from_mapping(TrainingSettings, settings, what="training")


def test_resume_identity_and_checkpoint_config_are_plain_data():
    settings = TrainingSettings(steps=5, batch_size=8, checkpoint_every=2, dp={"noise_multiplier": 0.5})
    assert settings.dp == DPSettings(noise_multiplier=0.5)
    identity = settings.resume_identity()
    assert identity == {"batch_size": 8, "dp": {"noise_multiplier": 0.5, "max_grad_norm": 1.0, "delta": None}}
    config = generator_checkpoint_config(_Config(), settings, num_classes=4, image_shape=(1, 8, 8))
    assert config == {
        "model_config": {"width": 3, "dims": [1, 2]},
        "num_classes": 4,
        "image_shape": [1, 8, 8],
        "training": identity,
    }
    assert config_to_dict(_Config(dims=(5,))) == {"width": 3, "dims": [5]}
    assert split_training_keys({"steps": 1, "width": 2, "dp": None}) == (
        {"width": 2},
        {"steps": 1, "dp": None},
    )
