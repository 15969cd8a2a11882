"""Classifier hyper-parameters per architecture (paper 000 Appendix A) by default, overrides winning, and
utility.classifier refusing bad keys and values by key path."""

from __future__ import annotations

import pytest

from medsyn.config.sections import UtilitySection, parse_classifier
from medsyn.config.strict import ConfigError, parse_section
from medsyn.evaluation.assessment import describe_classifier

# Appendix A, written out here independently of CLASSIFIER_HYPERPARAMETERS: (batch size, learning rate, epochs)
APPENDIX_A = {
    "vgg16": (64, 1e-4, 30),  # Kvasir
    "densenet121": (64, 1e-3, 30),  # CheXpert
    "cnn4": (32, 1e-3, 30),  # Corn
    "cnn3": (32, 1e-3, 30),  # PlantVillage
}


@pytest.mark.parametrize("arch", sorted(APPENDIX_A))
def test_each_architecture_gets_its_appendix_a_values(arch):
    settings = parse_classifier({"arch": arch}, "utility.classifier")
    assert (settings["batch_size"], settings["lr"], settings["epochs"]) == APPENDIX_A[arch]
    assert settings["top_k"] == 1


@pytest.mark.parametrize("arch", sorted(APPENDIX_A))
def test_an_explicit_value_wins(arch):
    settings = parse_classifier({"arch": arch, "batch_size": 8, "lr": 0.05}, "utility.classifier")
    assert (settings["batch_size"], settings["lr"], settings["epochs"]) == (8, 0.05, APPENDIX_A[arch][2])
    described = describe_classifier(settings)
    assert "batch_size 8 (override; default" in described and "lr 0.05 (override" in described
    assert f"epochs {APPENDIX_A[arch][2]} (override" not in described  # the paper value is not marked


def test_the_description_names_the_values_and_their_source():
    described = describe_classifier(parse_classifier({"arch": "vgg16"}, "utility.classifier"))
    assert described.startswith("classifier vgg16 (Adam, cross-entropy): batch_size 64, lr 0.0001, epochs 30 (")
    assert "App. A (Kvasir)" in described and "override" not in described
    assert "rotation uniform in ±15 degrees" in described


@pytest.mark.parametrize(
    "utility, match",
    [
        ({"classifier": {"arch": "vgg16", "batch_szie": 64}}, r"^utility\.classifier\.batch_szie: unknown key"),
        ({"classifier": {"arch": "resnet"}}, r"^utility\.classifier\.arch: unknown classifier arch 'resnet'"),
        ({"classifier": {"lr": 0}}, r"^utility\.classifier\.lr: must be > 0"),
        ({"classifier": {"top_k": 0}}, r"^utility\.classifier\.top_k: must be >= 1"),
        ({"classifier": {"geometric_da": {"max_rotation_degrees": 200}}},
         r"^utility\.classifier\.geometric_da\.max_rotation_degrees: expected a number in \[0, 180\]"),
        ({"classifier": {"geometric_da": {"vflip_probability": -0.1}}},
         r"^utility\.classifier\.geometric_da\.vflip_probability: expected a number in \[0, 1\]"),
        ({"classifier": {"geometric_da": {"rotate": 5}}}, r"^utility\.classifier\.geometric_da\.rotate: unknown key"),
    ],
)
def test_bad_keys_and_values_are_refused_by_key_path(utility, match):
    with pytest.raises(ConfigError, match=match):
        parse_section(UtilitySection, utility, path="utility")


def test_top_k_and_geometric_da_pass_through():
    settings = parse_classifier({"arch": "densenet121", "top_k": 3, "geometric_da": {"max_rotation_degrees": 30}},
                                "utility.classifier")
    assert settings["top_k"] == 3
    assert settings["geometric_da"] == {"max_rotation_degrees": 30.0, "hflip_probability": 0.5,
                                        "vflip_probability": 0.5}
